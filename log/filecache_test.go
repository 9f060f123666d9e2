package log

import (
	"bytes"
	"errors"
	iofs "io/fs"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingFS counts the files open through it now and the most open at
// once since the last resetPeak.
type countingFS struct {
	FS
	open, peak atomic.Int64
}

func (c *countingFS) OpenFile(path string, create bool) (File, error) {
	f, err := c.FS.OpenFile(path, create)
	if err != nil {
		return nil, err
	}
	n := c.open.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	return &countedFile{File: f, fs: c}, nil
}

func (c *countingFS) resetPeak() { c.peak.Store(c.open.Load()) }

type countedFile struct {
	File
	fs     *countingFS
	closed atomic.Bool
}

func (f *countedFile) Close() error {
	if f.closed.CompareAndSwap(false, true) {
		f.fs.open.Add(-1)
	}
	return f.File.Close()
}

// checkBatches checks that b holds whole batches, each the one
// simpleBatch(base, 2, 50) built when it was appended.
func checkBatches(t *testing.T, b []byte, what string) bool {
	t.Helper()
	for len(b) > 0 {
		h, err := ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			t.Errorf("%s: not a whole batch: %v", what, err)
			return false
		}
		if want := simpleBatch(h.BaseOffset, 2, 50); !bytes.Equal(b[:h.Size()], want) {
			t.Errorf("%s: batch at %d differs from the one appended", what, h.BaseOffset)
			return false
		}
		b = b[h.Size():]
	}
	return true
}

// sealedLog opens a log on a countingFS over fs with a cache of limit
// files, appends batches until it has at least segments sealed segments,
// and syncs, so every sealed segment is unpinned.
func sealedLog(t *testing.T, fs FS, limit, segments int) (*Log, *countingFS, *FileCache) {
	t.Helper()
	cfs := &countingFS{FS: fs}
	cache := NewFileCache(limit)
	l := openLog(t, cfs, "/d", testConfig(), Options{FileCache: cache})
	for len(l.Segments()) <= segments {
		appendN(t, l, 1, 2, 50)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	return l, cfs, cache
}

// Reads of many sealed segments in random order through a cache of 2 are
// all correct, and the files open never exceed the active segment's three
// plus the cache's two; opening the log again keeps a bound that does not
// grow with the segments either.
func TestFileCacheBoundsOpenFiles(t *testing.T) {
	mem := NewMemFS()
	l, cfs, cache := sealedLog(t, mem, 2, 40)
	if got := cfs.open.Load(); got > 3+2 {
		t.Fatalf("%d files open after the appends and a sync, want at most 5", got)
	}
	cfs.resetPeak()
	var bases []int64
	for off := l.StartOffset(); off < l.NextOffset(); off += 2 {
		bases = append(bases, off)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, i := range rng.Perm(len(bases)) {
		b, err := l.Read(nil, ReadRequest{Offset: bases[i], MaxOffset: l.NextOffset(), MaxBytes: 1, MinOneBatch: true})
		if err != nil {
			t.Fatalf("read %d: %v", bases[i], err)
		}
		if h, _ := ParseBatchHeader(b); h.BaseOffset != bases[i] || !checkBatches(t, b, "read") {
			t.Fatalf("read %d returned the batch at %d", bases[i], h.BaseOffset)
		}
		if ts := bases[i]*10 + 1; rng.IntN(4) == 0 {
			b, found, err := l.FindTimestamp(nil, ts)
			if h, _ := ParseBatchHeader(b); err != nil || !found || h.BaseOffset != bases[i] {
				t.Fatalf("find timestamp %d: batch at %d, found %v, %v", ts, h.BaseOffset, found, err)
			}
		}
	}
	var headers int
	if err := l.BatchHeaders(0, func(BatchHeader) bool { headers++; return true }); err != nil || headers != len(bases) {
		t.Fatalf("batch headers: %d of %d (%v)", headers, len(bases), err)
	}
	if peak := cfs.peak.Load(); peak > 3+2 {
		t.Fatalf("%d files open at once while reading %d segments with a cache of 2, want at most 5", peak, len(l.Segments()))
	}
	if st := cache.Stats(); st.Open > 2 || st.Opens < int64(len(l.Segments())-1) {
		t.Fatalf("cache stats %+v after reading %d sealed segments", st, len(l.Segments())-1)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := cfs.open.Load(); got != 0 {
		t.Fatalf("%d files open after Close", got)
	}

	// Opening again, after a clean Close and after a crash: at most two
	// segments' files (the one recovered and the one before it), the
	// cache's and a checkpoint's.
	reopen := func(what string) *Log {
		cfs := &countingFS{FS: mem}
		l := openLog(t, cfs, "/d", testConfig(), Options{FileCache: NewFileCache(2)})
		if peak := cfs.peak.Load(); peak > 2*3+2+1 {
			t.Fatalf("%s: %d files open at once while opening %d segments, want at most 9", what, peak, len(l.Segments()))
		}
		if got := readAllBatches(t, l); len(got) != len(bases) || !checkBatches(t, bytes.Join(got, nil), what) {
			t.Fatalf("%s: read %d batches, want %d", what, len(got), len(bases))
		}
		return l
	}
	l2 := reopen("after a clean Close")
	appendN(t, l2, 1, 2, 50)
	bases = append(bases, l2.NextOffset()-2)
	// l2 stays open: the next Open recovers as after a crash.
	reopen("after a crash")
}

// A file the cache evicts while a read holds it stays readable until the
// read releases it, then closes.
func TestFileCacheEvictsHeldFileOnRelease(t *testing.T) {
	l, cfs, cache := sealedLog(t, NewMemFS(), 1, 3)
	s := l.state.Load()
	a, b := s.sealed[0], s.sealed[1]
	before := cache.Stats()
	held, err := a.seg.openLog()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := l.Read(nil, ReadRequest{Offset: b.base, MaxOffset: b.next, MaxBytes: 1 << 20}); err != nil || !checkBatches(t, got, "read b") {
		t.Fatalf("read segment %d: %v", b.base, err)
	}
	// Opening a evicted the cached segment; opening b evicted a.
	if st := cache.Stats(); st.Open != 1 || st.Opens != before.Opens+2 || st.Evictions != before.Evictions+2 || a.seg.cached.Load() != nil {
		t.Fatalf("cache %+v: want segment %d evicted for %d", st, a.base, b.base)
	}
	if got := cfs.open.Load(); got != 3+2 {
		t.Fatalf("%d files open, want the active segment's 3, the cached one and the held one", got)
	}
	buf := make([]byte, a.size)
	if n, err := held.f.ReadAt(buf, 0); n != len(buf) || !checkBatches(t, buf, "held file") {
		t.Fatalf("read the held, evicted file: %d bytes, %v", n, err)
	}
	held.release()
	if got := cfs.open.Load(); got != 3+1 {
		t.Fatalf("%d files open after the release, want 4", got)
	}
}

// Retention and truncation take removed segments out of the cache and
// close their files; shrinking the limit closes files beyond it.
func TestFileCacheDropsRemovedSegments(t *testing.T) {
	l, cfs, cache := sealedLog(t, NewMemFS(), 8, 10)
	readAllBatches(t, l)
	if st := cache.Stats(); st.Open != 8 {
		t.Fatalf("cache holds %d files after reading 10 sealed segments, want 8", st.Open)
	}
	segs := l.Segments()
	if _, err := l.RemoveSegmentsBefore(segs[7].BaseOffset); err != nil {
		t.Fatal(err)
	}
	// Segments 7, 8 and 9 remain sealed; the cache held 2..9.
	if st, open := cache.Stats(), cfs.open.Load(); st.Open != 3 || open != 3+3 {
		t.Fatalf("after retention: cache holds %d, %d files open; want 3 and 6", st.Open, open)
	}
	if err := l.TruncateTo(segs[8].BaseOffset + 2); err != nil {
		t.Fatal(err)
	}
	// Segment 8 is active again (pinned, out of the cache); 9 and the
	// old active are gone.
	if st, open := cache.Stats(), cfs.open.Load(); st.Open != 1 || open != 3+1 {
		t.Fatalf("after truncation: cache holds %d, %d files open; want 1 and 4", st.Open, open)
	}
	got := readAllBatches(t, l)
	if len(got) == 0 || !checkBatches(t, bytes.Join(got, nil), "after truncation") {
		t.Fatal("log unreadable after truncation")
	}
	cache.SetLimit(1)
	if st := cache.Stats(); st.Open != 1 {
		t.Fatalf("cache holds %d after SetLimit(1)", st.Open)
	}
	appendN(t, l, 200, 2, 50)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	readAllBatches(t, l)
	if st, open := cache.Stats(), cfs.open.Load(); st.Open != 1 || open != 3+1 {
		t.Fatalf("after SetLimit(1) and reads: cache holds %d, %d files open; want 1 and 4", st.Open, open)
	}
}

// Readers in flight never see a file closed under them while the writer
// appends, rolls, syncs, removes segments (retention) and swaps in
// compacted copies, all through a cache of 2 (run with -race); every file
// is closed after Close.
func TestFileCacheConcurrentReadsRetentionCompaction(t *testing.T) {
	cfs := &countingFS{FS: NewMemFS()}
	cache := NewFileCache(2)
	f := NewFlusher(FlushConfig{}, nil)
	t.Cleanup(func() { f.Close(t.Context()) })
	l := openLog(t, cfs, "/d", Config{SegmentBytes: 1024, SegmentAge: time.Hour, IndexIntervalBytes: 100}, Options{FileCache: cache, Flusher: f})
	appendN(t, l, 40, 2, 50)
	stop := make(chan struct{})
	var reads atomic.Int64
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 9))
			var buf []byte
			for {
				select {
				case <-stop:
					return
				default:
				}
				start, next := l.StartOffset(), l.NextOffset()
				off := start + rng.Int64N(next-start+1)
				var err error
				buf, err = l.Read(buf[:0], ReadRequest{Offset: off, MaxOffset: next, MaxBytes: 1 + rng.IntN(3000), MinOneBatch: true})
				if err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
					t.Errorf("read %d: %v", off, err)
					return
				}
				if !checkBatches(t, buf, "concurrent read") {
					return
				}
				if b, _, err := l.FindTimestamp(nil, rng.Int64N(next*10)); err != nil || !checkBatches(t, b, "find timestamp") {
					t.Errorf("find timestamp: %v", err)
					return
				}
				if err := l.BatchHeaders(off, func(BatchHeader) bool { return rng.IntN(8) > 0 }); err != nil {
					t.Errorf("batch headers from %d: %v", off, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	for i := range 600 {
		appendN(t, l, 1, 2, 50)
		switch {
		case i%40 == 39:
			segs := l.Segments()
			if _, err := l.RemoveSegmentsBefore(segs[len(segs)/2].BaseOffset); err != nil {
				t.Fatal(err)
			}
		case i%40 == 19:
			copySegments(t, l, 2)
		}
	}
	for reads.Load() < 100 {
		// Wait for the readers (bounded by the test's timeout): on a
		// loaded machine they may not have run much yet.
		select {
		case <-t.Context().Done():
			t.Fatal("readers made no progress")
		case <-time.After(time.Millisecond):
		}
	}
	close(stop)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := cfs.open.Load(); got != 0 {
		t.Fatalf("%d files open after Close", got)
	}
}

// copySegments replaces the first n sealed segments with one cleaned
// segment holding the same batches (a clean that removes nothing).
func copySegments(t *testing.T, l *Log, n int) {
	t.Helper()
	segs := l.Segments()
	if len(segs) < n+1 {
		return
	}
	var bases []int64
	for _, s := range segs[:n] {
		if s.Active {
			return
		}
		bases = append(bases, s.BaseOffset)
	}
	c, err := l.CreateCleanedSegment(bases[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range bases {
		r, err := l.ReadSegment(base)
		if err != nil {
			t.Fatal(err)
		}
		for {
			b, _, err := r.Next()
			if err != nil {
				break
			}
			if err := c.Append(b); err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
	}
	if err := c.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := l.ReplaceSegments(c, bases); err != nil {
		t.Fatal(err)
	}
}

// limitedFS fails OpenFile with EMFILE once limit files are open through
// it, as a process at its RLIMIT_NOFILE does.
type limitedFS struct {
	countingFS
	limit int64
}

func (l *limitedFS) OpenFile(path string, create bool) (File, error) {
	if l.open.Load() >= l.limit {
		return nil, &iofs.PathError{Op: "open", Path: path, Err: syscall.EMFILE}
	}
	return l.countingFS.OpenFile(path, create)
}

// A process out of descriptors gives back the cached files no read holds
// and opens again, so reads go on under a cache limit the process cannot
// afford; with nothing to give back, the error names the fix.
func TestFileCacheOutOfDescriptors(t *testing.T) {
	lfs := &limitedFS{countingFS: countingFS{FS: NewMemFS()}, limit: 1 << 20}
	cache := NewFileCache(8)
	l := openLog(t, lfs, "/d", testConfig(), Options{FileCache: cache})
	for len(l.Segments()) <= 12 {
		appendN(t, l, 1, 2, 50)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	// The active segment's three files and two more, though the cache
	// holds 8 already.
	lfs.limit = 3 + 2
	got := readAllBatches(t, l)
	if !checkBatches(t, bytes.Join(got, nil), "under the limit") || len(got) != int(l.NextOffset()/2) {
		t.Fatalf("read %d batches under the limit", len(got))
	}
	s := l.state.Load()
	held := make([]*fileHandle, 0, 2)
	for _, v := range s.sealed[:2] {
		h, err := v.seg.openLog()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, h)
	}
	_, err := l.Read(nil, ReadRequest{Offset: s.sealed[5].base, MaxOffset: l.NextOffset(), MaxBytes: 1, MinOneBatch: true})
	if !errors.Is(err, syscall.EMFILE) || !IsStorageError(err) || !strings.Contains(err.Error(), "log.max.open.sealed.files") {
		t.Fatalf("read with every descriptor held: %v", err)
	}
	for _, h := range held {
		h.release()
	}
	if _, err := l.Read(nil, ReadRequest{Offset: s.sealed[5].base, MaxOffset: l.NextOffset(), MaxBytes: 1, MinOneBatch: true}); err != nil {
		t.Fatalf("read once the descriptors are released: %v", err)
	}
}
