package log

import (
	"testing"
	"time"
)

func TestLogStats(t *testing.T) {
	l := openLog(t, NewMemFS(), "/d/p0", testConfig(), Options{})
	if got := l.Stats(); got.Segments != 1 || got.Bytes != 0 {
		t.Fatalf("empty log Stats %+v, want 1 segment of 0 bytes", got)
	}
	batches := appendN(t, l, 20, 5, 100) // 4096-byte segments: several rolls
	var want int64
	for _, b := range batches {
		want += int64(len(b))
	}
	got := l.Stats()
	if got.Bytes != want {
		t.Errorf("Bytes %d, want %d (the appended batches)", got.Bytes, want)
	}
	if segs := len(l.Segments()); got.Segments != segs || segs < 2 {
		t.Errorf("Segments %d, want %d (len of Segments, at least 2)", got.Segments, segs)
	}
	l.Close()
	if got := l.Stats(); got != (Stats{}) {
		t.Errorf("closed log Stats %+v, want zero", got)
	}
}

func TestSyncObserver(t *testing.T) {
	f := newTestFlusher(t, FlushConfig{})
	seen := make(chan SyncInfo, 100)
	f.SetSyncObserver(func(s SyncInfo) { seen <- s })
	l := openLog(t, NewMemFS(), "/d/p0", DefaultConfig(), Options{Flusher: f})
	batches := appendN(t, l, 1, 3, 50)
	select {
	case s := <-seen:
		if s.Bytes != int64(len(batches[0])) {
			t.Errorf("SyncInfo.Bytes %d, want %d", s.Bytes, len(batches[0]))
		}
		if s.Took < 0 {
			t.Errorf("SyncInfo.Took %v is negative", s.Took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no SyncInfo within 10s of an append")
	}
	f.SetSyncObserver(nil)
	appendN(t, l, 1, 1, 10)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Close ran a last round: with the observer removed nothing more came.
	select {
	case s := <-seen:
		t.Fatalf("SyncInfo %+v after the observer was removed", s)
	default:
	}
}
