package log

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAppendReadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		batches    int
		recordsPer int
		valueSize  int
		cfg        Config
	}{
		{"one segment", 5, 3, 10, DefaultConfig()},
		{"many segments", 200, 2, 40, testConfig()},
		{"index every batch", 50, 1, 100, Config{SegmentBytes: 2048, SegmentAge: time.Hour, IndexIntervalBytes: 0}},
		{"batch bigger than segment", 5, 10, 600, Config{SegmentBytes: 1024, SegmentAge: time.Hour, IndexIntervalBytes: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := NewMemFS()
			l := openLog(t, fs, "/data/p0", tc.cfg, Options{})
			want := appendN(t, l, tc.batches, tc.recordsPer, tc.valueSize)
			check := func(l *Log) {
				t.Helper()
				got := readAllBatches(t, l)
				if len(got) != len(want) {
					t.Fatalf("read %d batches, want %d", len(got), len(want))
				}
				for i := range got {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("batch %d differs", i)
					}
				}
				// Reading from every offset returns the batch holding it.
				for off := int64(0); off < l.NextOffset(); off++ {
					b, err := l.Read(nil, ReadRequest{Offset: off, MaxOffset: l.NextOffset(), MaxBytes: 1, MinOneBatch: true})
					if err != nil {
						t.Fatalf("Read(%d): %v", off, err)
					}
					h, _ := ParseBatchHeader(b)
					if off < h.BaseOffset || off > h.LastOffset() {
						t.Fatalf("Read(%d) returned batch [%d, %d]", off, h.BaseOffset, h.LastOffset())
					}
				}
				// One big read returns everything.
				all, err := l.Read(nil, ReadRequest{Offset: 0, MaxOffset: l.NextOffset(), MaxBytes: 1 << 30})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(all, bytes.Join(want, nil)) {
					t.Fatalf("full read: %d bytes, want %d", len(all), len(bytes.Join(want, nil)))
				}
			}
			check(l)
			if got, want := l.NextOffset(), int64(tc.batches*tc.recordsPer); got != want {
				t.Fatalf("NextOffset = %d, want %d", got, want)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2 := openLog(t, fs, "/data/p0", tc.cfg, Options{})
			check(l2)
		})
	}
}

func TestEmptyLog(t *testing.T) {
	l := openLog(t, NewMemFS(), "/new/dir", testConfig(), Options{})
	if l.StartOffset() != 0 || l.NextOffset() != 0 || l.SyncedOffset() != 0 {
		t.Fatalf("offsets %d %d %d, want 0", l.StartOffset(), l.NextOffset(), l.SyncedOffset())
	}
	got, err := l.Read([]byte("x"), ReadRequest{Offset: 0, MaxOffset: 10, MaxBytes: 100})
	if err != nil || string(got) != "x" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if _, err := l.Read(nil, ReadRequest{Offset: 1, MaxOffset: 10, MaxBytes: 100}); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read(1) error %v, want ErrOffsetOutOfRange", err)
	}
	if _, _, found, err := l.MaxTimestamp(nil); found || err != nil {
		t.Fatalf("MaxTimestamp found=%v err=%v", found, err)
	}
	if _, found, err := l.FindTimestamp(nil, 0); found || err != nil {
		t.Fatalf("FindTimestamp found=%v err=%v", found, err)
	}
}

func TestReadLimits(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, "/d", testConfig(), Options{})
	batches := appendN(t, l, 60, 3, 50) // ~250-byte batches, several segments
	size := len(batches[0])
	offsetOf := func(i int) int64 { return int64(i * 3) }
	for _, tc := range []struct {
		name    string
		req     ReadRequest
		want    []int // batch indexes
		wantErr error
	}{
		{"exact batch", ReadRequest{Offset: 0, MaxOffset: 1000, MaxBytes: size}, []int{0}, nil},
		{"one byte short", ReadRequest{Offset: 0, MaxOffset: 1000, MaxBytes: size - 1}, nil, nil},
		{"min one batch", ReadRequest{Offset: 0, MaxOffset: 1000, MaxBytes: size - 1, MinOneBatch: true}, []int{0}, nil},
		{"min one batch zero bytes", ReadRequest{Offset: 4, MaxOffset: 1000, MaxBytes: 0, MinOneBatch: true}, []int{1}, nil},
		{"two and a half", ReadRequest{Offset: 1, MaxOffset: 1000, MaxBytes: size*2 + size/2}, []int{0, 1}, nil},
		{"max offset excludes batch", ReadRequest{Offset: 0, MaxOffset: 5, MaxBytes: 1 << 20}, []int{0}, nil},
		{"max offset at batch end", ReadRequest{Offset: 0, MaxOffset: 6, MaxBytes: 1 << 20}, []int{0, 1}, nil},
		{"max offset inside first batch", ReadRequest{Offset: 3, MaxOffset: 4, MaxBytes: 1 << 20, MinOneBatch: true}, nil, nil},
		{"max offset below offset", ReadRequest{Offset: 9, MaxOffset: 3, MaxBytes: 1 << 20}, nil, nil},
		{"crosses segments", ReadRequest{Offset: offsetOf(10), MaxOffset: offsetOf(40), MaxBytes: 1 << 20}, seq(10, 40), nil},
		{"at end", ReadRequest{Offset: 180, MaxOffset: 1000, MaxBytes: 100}, nil, nil},
		{"past end", ReadRequest{Offset: 181, MaxOffset: 1000, MaxBytes: 100}, nil, ErrOffsetOutOfRange},
		{"negative", ReadRequest{Offset: -1, MaxOffset: 1000, MaxBytes: 100}, nil, ErrOffsetOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, err := l.Read(slices.Clone(prefix), tc.req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("dst prefix lost")
			}
			var want []byte
			for _, i := range tc.want {
				want = append(want, batches[i]...)
			}
			if !bytes.Equal(got[len(prefix):], want) {
				t.Fatalf("got %d bytes, want %d (batches %v)", len(got)-len(prefix), len(want), tc.want)
			}
		})
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func TestRoll(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	fs := NewMemFS()
	cfg := Config{SegmentBytes: 1000, SegmentAge: time.Minute, IndexIntervalBytes: 100}
	l := openLog(t, fs, "/d", cfg, Options{Now: clock.Now})
	b := simpleBatch(0, 1, 200)
	size := int64(len(b))
	appendN(t, l, 3, 1, 200)
	if got := l.state.Load().count(); got != 1 {
		t.Fatalf("%d segments after %d bytes, want 1", got, 3*size)
	}
	appendN(t, l, 2, 1, 200) // 4 batches > 1000 bytes: rolls before the 4th
	s := l.state.Load()
	if s.count() != 2 || s.active.base != 3 || s.sealed[0].size != 3*size {
		t.Fatalf("after size roll: %d segments, active base %d, first size %d", s.count(), s.active.base, s.sealed[0].size)
	}
	clock.now = clock.now.Add(time.Minute)
	appendN(t, l, 1, 1, 200)
	if s := l.state.Load(); s.count() != 3 || s.active.base != 5 {
		t.Fatalf("after age roll: %d segments, active base %d", s.count(), s.active.base)
	}
	names, _ := fs.ReadDir("/d")
	want := []string{
		"00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex",
		"00000000000000000003.index", "00000000000000000003.log", "00000000000000000003.timeindex",
		"00000000000000000005.index", "00000000000000000005.log", "00000000000000000005.timeindex",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
}

func TestAppendErrors(t *testing.T) {
	l := openLog(t, NewMemFS(), "/d", testConfig(), Options{})
	appendN(t, l, 2, 2, 10)
	good := simpleBatch(4, 2, 10)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"gap", simpleBatch(5, 1, 10), ErrOffsetMismatch},
		{"overlap", simpleBatch(3, 1, 10), ErrOffsetMismatch},
		{"not contiguous", append(slices.Clone(good), simpleBatch(7, 1, 10)...), ErrOffsetMismatch},
		{"short", good[:len(good)-1], ErrShortBatch},
		{"garbage", bytes.Repeat([]byte{0xff}, 100), ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Append(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("Append error %v, want %v", err, tc.want)
			}
			if l.NextOffset() != 4 {
				t.Fatalf("NextOffset moved to %d", l.NextOffset())
			}
		})
	}
	if err := l.Append(append(good, simpleBatch(6, 3, 10)...)); err != nil {
		t.Fatal(err)
	}
	if l.NextOffset() != 9 {
		t.Fatalf("NextOffset %d, want 9", l.NextOffset())
	}
}

func TestTruncateTo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		to      int64
		wantErr error
	}{
		{"to end", 120, nil},
		{"last batch", 118, nil},
		{"mid active segment", 110, nil},
		{"mid older segment", 40, nil},
		{"segment base", -1, nil}, // filled in: the second segment's base
		{"to start", 0, nil},
		{"inside batch", 41, ErrNotBatchBoundary},
		{"past end", 122, ErrOffsetOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := NewMemFS()
			l := openLog(t, fs, "/d", testConfig(), Options{})
			batches := appendN(t, l, 60, 2, 100)
			to := tc.to
			if to < 0 {
				to = l.state.Load().sealed[1].base
			}
			err := l.TruncateTo(to)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("TruncateTo(%d) error %v, want %v", to, err, tc.wantErr)
			}
			wantNext := to
			if err != nil {
				wantNext = 120
			}
			check := func(l *Log) {
				t.Helper()
				if l.NextOffset() != wantNext {
					t.Fatalf("NextOffset %d, want %d", l.NextOffset(), wantNext)
				}
				got := readAllBatches(t, l)
				if !slices.EqualFunc(got, batches[:wantNext/2], bytes.Equal) {
					t.Fatalf("after truncation read %d batches, want %d", len(got), wantNext/2)
				}
			}
			check(l)
			// The log keeps working after truncation.
			more := appendN(t, l, 30, 2, 100)
			batches = append(batches[:wantNext/2:wantNext/2], more...)
			wantNext += 60
			check(l)
			l.Close()
			check(openLog(t, fs, "/d", testConfig(), Options{}))
			// A kill -9 right after truncating recovers the same log.
			l3 := openLog(t, fs.CrashClone(), "/d", testConfig(), Options{})
			check(l3)
		})
	}
}

func TestDelete(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, "/data/t-0", testConfig(), Options{})
	appendN(t, l, 50, 2, 100)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadDir("/data/t-0"); err == nil {
		t.Fatal("directory still exists")
	}
	if err := l.Append(simpleBatch(100, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Delete: %v", err)
	}
	if _, err := l.Read(nil, ReadRequest{MaxOffset: 10, MaxBytes: 10}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Delete: %v", err)
	}
}

func TestOSFS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "topic-0")
	l := openLog(t, OSFS{}, dir, testConfig(), Options{})
	want := appendN(t, l, 40, 2, 100)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if l.SyncedOffset() != 80 {
		t.Fatalf("SyncedOffset %d, want 80", l.SyncedOffset())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, OSFS{}, dir, testConfig(), Options{})
	if got := readAllBatches(t, l2); !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("reopened log differs")
	}
	names, _ := OSFS{}.ReadDir(dir)
	if slices.Contains(names, cleanMarker) || !slices.Contains(names, recoveryPointFile) || !strings.HasSuffix(names[1], ".index") {
		t.Fatalf("files %v", names)
	}
	_ = fmt.Sprint()
}

// TestAppendCompacted: batches copied from a compacted log may leave
// offset gaps; reads skip them, and a clean reopen or a kill -9 keeps
// them (the compacted end covers them); plain Append still refuses gaps,
// and no Append may go backwards.
func TestAppendCompacted(t *testing.T) {
	fs := NewMemFS()
	// One segment: the active one, which recovery verifies after a crash.
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	l := openLog(t, fs, "/d", cfg, Options{})
	want := appendN(t, l, 10, 2, 100) // [0, 20)
	if err := l.Append(simpleBatch(25, 2, 100)); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("Append with a gap: %v, want ErrOffsetMismatch", err)
	}
	if err := l.AppendCompacted(simpleBatch(18, 2, 100)); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("AppendCompacted inside the log: %v, want ErrOffsetMismatch", err)
	}
	for _, base := range []int64{25, 40, 42} {
		b := simpleBatch(base, 2, 100)
		if err := l.AppendCompacted(b); err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
	}
	want = append(want, appendN(t, l, 3, 2, 100)...) // dense again: [44, 50)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	check := func(l *Log) {
		t.Helper()
		if l.NextOffset() != 50 {
			t.Fatalf("NextOffset %d, want 50", l.NextOffset())
		}
		if got := readAllBatches(t, l); !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("read %d batches, want %d", len(got), len(want))
		}
		b, err := l.Read(nil, ReadRequest{Offset: 30, MaxOffset: 50, MaxBytes: 1, MinOneBatch: true})
		if err != nil || !bytes.Equal(b, want[11]) {
			t.Fatalf("read at 30, inside a gap: %d bytes, %v; want the batch at 40", len(b), err)
		}
	}
	check(l)
	check(openLog(t, fs.CrashClone(), "/d", cfg, Options{}))
	l.Close()
	check(openLog(t, fs, "/d", cfg, Options{}))
}
