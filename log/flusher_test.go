package log

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// hookFS is a MemFS whose file syncs go through onSync first.
type hookFS struct {
	*MemFS
	onSync func(path string) error
}

func (h *hookFS) OpenFile(path string, create bool) (File, error) {
	f, err := h.MemFS.OpenFile(path, create)
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, path: path, fs: h}, nil
}

type hookFile struct {
	File
	path string
	fs   *hookFS
}

func (f *hookFile) Sync() error {
	if f.fs.onSync != nil {
		if err := f.fs.onSync(f.path); err != nil {
			return err
		}
	}
	return f.File.Sync()
}

// syncWatcher records OnSynced calls and lets a test wait for an offset.
type syncWatcher struct {
	mu      sync.Mutex
	cond    sync.Cond
	offsets []int64
}

func newSyncWatcher() *syncWatcher {
	w := &syncWatcher{}
	w.cond.L = &w.mu
	return w
}

func (w *syncWatcher) onSynced(offset int64) {
	w.mu.Lock()
	w.offsets = append(w.offsets, offset)
	w.cond.Broadcast()
	w.mu.Unlock()
}

func (w *syncWatcher) waitFor(offset int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.offsets) == 0 || w.offsets[len(w.offsets)-1] < offset {
		w.cond.Wait()
	}
}

func newTestFlusher(t *testing.T, cfg FlushConfig) *Flusher {
	t.Helper()
	f := NewFlusher(cfg, nil)
	t.Cleanup(func() { f.Close(context.Background()) })
	return f
}

// TestGroupCommit blocks the first sync, appends to several logs while it
// is blocked, and checks that all those appends share one more round.
func TestGroupCommit(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var armed, first atomic.Bool
	fs := &hookFS{MemFS: NewMemFS(), onSync: func(path string) error {
		if armed.Load() && strings.HasSuffix(path, logSuffix) && first.CompareAndSwap(false, true) {
			close(started)
			<-release
		}
		return nil
	}}
	f := newTestFlusher(t, FlushConfig{})
	var logs []*Log
	var watchers []*syncWatcher
	for i := range 3 {
		w := newSyncWatcher()
		logs = append(logs, openLog(t, fs, fmt.Sprintf("/d/p%d", i), DefaultConfig(), Options{Flusher: f, OnSynced: w.onSynced}))
		watchers = append(watchers, w)
	}
	armed.Store(true)
	appendN(t, logs[0], 1, 1, 10)
	<-started // round 1 is syncing log 0 and blocks
	appends := 1
	for range 50 {
		for _, l := range logs {
			appendN(t, l, 1, 2, 10)
			appends++
		}
	}
	if logs[0].SyncedOffset() != 0 {
		t.Fatalf("SyncedOffset moved before the sync finished")
	}
	close(release)
	for i, l := range logs {
		watchers[i].waitFor(l.NextOffset())
	}
	st := f.Stats()
	if st.Rounds != 2 || st.Syncs != 4 {
		t.Fatalf("stats %+v after %d appends, want 2 rounds and 4 syncs", st, appends)
	}
	var bytes int64
	for _, l := range logs {
		bytes += l.state.Load().appended
	}
	if st.Bytes != bytes {
		t.Fatalf("Bytes %d, want %d", st.Bytes, bytes)
	}
	if got := watchers[0].offsets; len(got) != 2 || got[0] != 1 || got[1] != 101 {
		t.Fatalf("log 0 OnSynced calls %v, want [1 101]", got)
	}
}

// TestFlusherConcurrentAppenders runs acks=all style producers on several
// logs: each appends and waits until its batch is synced.
func TestFlusherConcurrentAppenders(t *testing.T) {
	f := newTestFlusher(t, FlushConfig{})
	const logsN, producersPerLog, appendsPerProducer = 4, 6, 10
	var wg sync.WaitGroup
	for i := range logsN {
		w := newSyncWatcher()
		l := openLog(t, OSFS{}, t.TempDir(), DefaultConfig(), Options{Flusher: f, OnSynced: w.onSynced})
		var writer sync.Mutex // the caller serialises appends
		for range producersPerLog {
			wg.Go(func() {
				for range appendsPerProducer {
					writer.Lock()
					b := simpleBatch(l.NextOffset(), 1, 100)
					err := l.Append(b)
					next := l.NextOffset()
					writer.Unlock()
					if err != nil {
						t.Errorf("log %d: %v", i, err)
						return
					}
					w.waitFor(next)
					if l.SyncedOffset() < next {
						t.Errorf("OnSynced(%d) before SyncedOffset", next)
					}
				}
			})
		}
	}
	wg.Wait()
	st := f.Stats()
	appends := int64(logsN * producersPerLog * appendsPerProducer)
	t.Logf("%d appends, %+v", appends, st)
	if st.Syncs >= appends {
		t.Fatalf("%d syncs for %d appends: no group commit", st.Syncs, appends)
	}
}

func TestFlusherInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFlusher(FlushConfig{Interval: time.Second}, nil)
		l := openLog(t, NewMemFS(), "/d", DefaultConfig(), Options{Flusher: f})
		appendN(t, l, 1, 1, 10)
		synctest.Wait()
		if l.SyncedOffset() != 1 {
			t.Fatalf("first append not synced at once: %d", l.SyncedOffset())
		}
		appendN(t, l, 3, 1, 10)
		synctest.Wait()
		if l.SyncedOffset() != 1 {
			t.Fatalf("synced within the interval: %d", l.SyncedOffset())
		}
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if l.SyncedOffset() != 1 {
			t.Fatalf("synced before the interval passed: %d", l.SyncedOffset())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if l.SyncedOffset() != 4 {
			t.Fatalf("not synced after the interval: %d", l.SyncedOffset())
		}
		if st := f.Stats(); st.Rounds != 2 {
			t.Fatalf("stats %+v, want 2 rounds", st)
		}
		// Close does a last round without waiting for the interval.
		appendN(t, l, 1, 1, 10)
		if err := f.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if l.SyncedOffset() != 5 {
			t.Fatalf("Close did not sync: %d", l.SyncedOffset())
		}
		if err := f.Close(t.Context()); !errors.Is(err, ErrClosed) {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestFlusherCloseIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFlusher(FlushConfig{}, nil)
		if err := f.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st := f.Stats(); st != (FlushStats{}) {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestSyncFailureIsSticky checks that after a failed fsync the log refuses
// appends and the synced offset stays put.
func TestSyncFailureIsSticky(t *testing.T) {
	boom := errors.New("disk on fire")
	var fail atomic.Bool
	fs := &hookFS{MemFS: NewMemFS(), onSync: func(string) error {
		if fail.Load() {
			return boom
		}
		return nil
	}}
	l := openLog(t, fs, "/d", DefaultConfig(), Options{})
	appendN(t, l, 2, 1, 10)
	fail.Store(true)
	if err := l.Sync(); !errors.Is(err, boom) {
		t.Fatalf("Sync: %v", err)
	}
	fail.Store(false)
	if err := l.Append(simpleBatch(2, 1, 10)); !errors.Is(err, boom) {
		t.Fatalf("Append after failed sync: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, boom) {
		t.Fatalf("second Sync: %v", err)
	}
	if l.SyncedOffset() != 0 {
		t.Fatalf("SyncedOffset %d after failed sync", l.SyncedOffset())
	}
}

// TestRollSyncsSealedSegment checks that a roll's sealed segment is synced
// by the next round, so the synced offset is truthful across segments.
func TestRollSyncsSealedSegment(t *testing.T) {
	fs := NewMemFS()
	f := newTestFlusher(t, FlushConfig{})
	w := newSyncWatcher()
	cfg := Config{SegmentBytes: 1000, SegmentAge: time.Hour, IndexIntervalBytes: 100}
	l := openLog(t, fs, "/d", cfg, Options{Flusher: f, OnSynced: w.onSynced})
	appendN(t, l, 20, 1, 200)
	w.waitFor(20)
	l2 := openLog(t, fs.CrashClone(), "/d", cfg, Options{})
	if l2.NextOffset() != 20 {
		t.Fatalf("after power cut NextOffset %d, want 20", l2.NextOffset())
	}
}
