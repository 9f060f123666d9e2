package log

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// segmentFiles returns the sorted paths of dir's files with suffix.
func segmentFiles(t *testing.T, fs FS, dir, suffix string) []string {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out
}

// mutateFile applies fn to the bytes of path and writes the result back.
func mutateFile(t *testing.T, fs FS, path string, fn func([]byte) []byte) {
	t.Helper()
	f, err := fs.OpenFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := readAll(f)
	if err != nil {
		t.Fatal(err)
	}
	b = fn(slices.Clone(b))
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
}

func fileBytes(t *testing.T, fs FS, path string) []byte {
	t.Helper()
	f, err := fs.OpenFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := readAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecovery(t *testing.T) {
	const dir = "/data/topic-0"
	last := func(paths []string) string { return paths[len(paths)-1] }
	for _, tc := range []struct {
		name  string
		close bool // Close before the damage (clean marker present)
		// damage changes the files and returns how many of the batches
		// must survive (-1: all).
		damage func(t *testing.T, fs *MemFS, batches [][]byte) int
	}{
		{"kill -9", false, func(*testing.T, *MemFS, [][]byte) int { return -1 }},
		{"clean", true, func(*testing.T, *MemFS, [][]byte) int { return -1 }},
		{"partial batch at end", false, func(t *testing.T, fs *MemFS, b [][]byte) int {
			mutateFile(t, fs, last(segmentFiles(t, fs, dir, logSuffix)), func(d []byte) []byte {
				return append(d, simpleBatch(int64(len(b)*2), 2, 100)[:70]...)
			})
			return -1
		}},
		{"partial header at end", false, func(t *testing.T, fs *MemFS, b [][]byte) int {
			mutateFile(t, fs, last(segmentFiles(t, fs, dir, logSuffix)), func(d []byte) []byte {
				return append(d, simpleBatch(int64(len(b)*2), 2, 100)[:30]...)
			})
			return -1
		}},
		{"garbage at end", false, func(t *testing.T, fs *MemFS, b [][]byte) int {
			mutateFile(t, fs, last(segmentFiles(t, fs, dir, logSuffix)), func(d []byte) []byte {
				return append(d, bytes.Repeat([]byte{0xa5}, 300)...)
			})
			return -1
		}},
		{"zeros at end", false, func(t *testing.T, fs *MemFS, b [][]byte) int {
			mutateFile(t, fs, last(segmentFiles(t, fs, dir, logSuffix)), func(d []byte) []byte {
				return append(d, make([]byte, 4096)...)
			})
			return -1
		}},
		{"flipped crc byte in last batch", false, func(t *testing.T, fs *MemFS, b [][]byte) int {
			mutateFile(t, fs, last(segmentFiles(t, fs, dir, logSuffix)), func(d []byte) []byte {
				d[len(d)-5] ^= 0x40
				return d
			})
			return len(b) - 1
		}},
		{"torn tail after clean close", true, func(t *testing.T, fs *MemFS, b [][]byte) int {
			mutateFile(t, fs, last(segmentFiles(t, fs, dir, logSuffix)), func(d []byte) []byte {
				return append(d, simpleBatch(int64(len(b)*2), 2, 100)[:90]...)
			})
			return -1
		}},
		{"empty newest segment", false, func(t *testing.T, fs *MemFS, b [][]byte) int {
			logs := segmentFiles(t, fs, dir, logSuffix)
			mutateFile(t, fs, last(logs), func([]byte) []byte { return nil })
			base, _, _ := parseSegmentName(filepath.Base(last(logs)))
			return int(base / 2)
		}},
		{"missing indexes", false, func(t *testing.T, fs *MemFS, b [][]byte) int {
			for _, p := range append(segmentFiles(t, fs, dir, indexSuffix), segmentFiles(t, fs, dir, timeIndexSuffix)[1]) {
				if err := fs.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
			return -1
		}},
		{"missing indexes after clean close", true, func(t *testing.T, fs *MemFS, b [][]byte) int {
			for _, p := range segmentFiles(t, fs, dir, timeIndexSuffix) {
				fs.Remove(p)
			}
			return -1
		}},
		{"stale index", true, func(t *testing.T, fs *MemFS, b [][]byte) int {
			for _, p := range segmentFiles(t, fs, dir, indexSuffix) {
				mutateFile(t, fs, p, func(d []byte) []byte { return d[:len(d)/2/indexEntrySize*indexEntrySize] })
			}
			return -1
		}},
		{"index entry points elsewhere", true, func(t *testing.T, fs *MemFS, b [][]byte) int {
			for _, p := range segmentFiles(t, fs, dir, indexSuffix) {
				mutateFile(t, fs, p, func(d []byte) []byte { d[len(d)-1] += 3; return d })
			}
			return -1
		}},
		{"index torn entry", true, func(t *testing.T, fs *MemFS, b [][]byte) int {
			mutateFile(t, fs, segmentFiles(t, fs, dir, indexSuffix)[0], func(d []byte) []byte { return d[:len(d)-3] })
			mutateFile(t, fs, segmentFiles(t, fs, dir, timeIndexSuffix)[1], func(d []byte) []byte { return append(d, 1) })
			return -1
		}},
		{"index decreasing", true, func(t *testing.T, fs *MemFS, b [][]byte) int {
			mutateFile(t, fs, segmentFiles(t, fs, dir, indexSuffix)[1], func(d []byte) []byte {
				copy(d[indexEntrySize:], make([]byte, indexEntrySize))
				return d
			})
			mutateFile(t, fs, segmentFiles(t, fs, dir, timeIndexSuffix)[2], func(d []byte) []byte {
				copy(d[timeEntrySize:], make([]byte, 8))
				return d
			})
			return -1
		}},
		{"index beyond log", true, func(t *testing.T, fs *MemFS, b [][]byte) int {
			mutateFile(t, fs, segmentFiles(t, fs, dir, indexSuffix)[0], func(d []byte) []byte {
				return appendIndexEntry(d, indexEntry{relativeOffset: 1 << 30, position: 1 << 30})
			})
			return -1
		}},
		{"corrupt batch in older segment", false, func(t *testing.T, fs *MemFS, b [][]byte) int {
			// Flip a byte of the last batch of segment 1, in the region
			// recovery verifies (after the last index entry).
			logs := segmentFiles(t, fs, dir, logSuffix)
			base, _, _ := parseSegmentName(filepath.Base(logs[1]))
			perSegment := len(fileBytes(t, fs, logs[1])) / len(b[0])
			mutateFile(t, fs, logs[1], func(d []byte) []byte { d[len(d)-5] ^= 1; return d })
			return int(base/2) + perSegment - 1
		}},
		{"corrupt header in older segment after clean close", true, func(t *testing.T, fs *MemFS, b [][]byte) int {
			logs := segmentFiles(t, fs, dir, logSuffix)
			base, _, _ := parseSegmentName(filepath.Base(logs[0]))
			perSegment := len(fileBytes(t, fs, logs[0])) / len(b[0])
			mutateFile(t, fs, logs[0], func(d []byte) []byte { d[len(d)-len(b[0])+offsetMagic] = 7; return d })
			return int(base/2) + perSegment - 1
		}},
		{"gap between segments", false, func(t *testing.T, fs *MemFS, b [][]byte) int {
			logs := segmentFiles(t, fs, dir, logSuffix)
			fs.Remove(logs[2])
			base, _, _ := parseSegmentName(filepath.Base(logs[2]))
			return int(base / 2)
		}},
		{"stray files", false, func(t *testing.T, fs *MemFS, b [][]byte) int {
			for _, name := range []string{"notes.txt", "00000000000000999999.index", "00000000000000000000.log.tmp", "x.log"} {
				f, _ := fs.OpenFile(filepath.Join(dir, name), true)
				f.WriteAt([]byte("junk"), 0)
				f.Close()
			}
			fs.MkdirAll(filepath.Join(dir, "subdir"))
			return -1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := NewMemFS()
			l := openLog(t, fs, dir, testConfig(), Options{})
			batches := appendN(t, l, 100, 2, 100)
			if n := l.state.Load().count(); n < 4 {
				t.Fatalf("want at least 4 segments, have %d", n)
			}
			if tc.close {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			keep := tc.damage(t, fs, batches)
			if keep < 0 {
				keep = len(batches)
			}
			l2 := openLog(t, fs, dir, testConfig(), Options{})
			got := readAllBatches(t, l2)
			if !slices.EqualFunc(got, batches[:keep], bytes.Equal) {
				t.Fatalf("recovered %d batches, want the first %d", len(got), keep)
			}
			if l2.NextOffset() != int64(keep*2) || l2.SyncedOffset() != l2.NextOffset() {
				t.Fatalf("NextOffset %d SyncedOffset %d, want %d", l2.NextOffset(), l2.SyncedOffset(), keep*2)
			}
			checkIndexesMatchRebuild(t, l2)
			// The log accepts appends after recovery and reopens cleanly.
			batches = append(batches[:keep:keep], appendN(t, l2, 10, 2, 100)...)
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			l3 := openLog(t, fs, dir, testConfig(), Options{})
			if got := readAllBatches(t, l3); !slices.EqualFunc(got, batches, bytes.Equal) {
				t.Fatalf("after reopen read %d batches, want %d", len(got), len(batches))
			}
		})
	}
}

// checkIndexesMatchRebuild checks each segment's in-memory and on-disk
// indexes against a rebuild from its .log.
func checkIndexesMatchRebuild(t *testing.T, l *Log) {
	t.Helper()
	s := l.state.Load()
	for i := range s.count() {
		v := s.view(i)
		// A sealed segment's files are closed: open them as the writer
		// would, and close them again after.
		if err := v.seg.repin(); err != nil {
			t.Fatal(err)
		}
		if i < len(s.sealed) {
			defer v.seg.unpin()
		}
		rebuilt, _, err := l.scanSegment(emptyView(v.seg), 0, v.size)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rebuilt.index, v.index) || !slices.Equal(rebuilt.times, v.times) || rebuilt.maxTimestamp != v.maxTimestamp || rebuilt.next != v.next {
			t.Fatalf("segment %d: indexes differ from a rebuild:\n%+v\n%+v", v.base, v, rebuilt)
		}
		ib, _ := readAll(v.seg.index)
		if len(ib) != len(v.index)*indexEntrySize {
			t.Fatalf("segment %d: index file holds %d bytes for %d entries", v.base, len(ib), len(v.index))
		}
	}
}

// TestPowerCut crashes a MemFS (keeping only synced data, optionally with
// torn unsynced tails) while appends run with a Flusher, and checks that
// every batch below the synced offset at the crash survives and that
// nothing corrupt is served.
func TestPowerCut(t *testing.T) {
	for _, tc := range []struct {
		name string
		torn bool
	}{{"clean cut", false}, {"torn writes", true}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			fs := NewMemFS()
			f := NewFlusher(FlushConfig{}, nil)
			t.Cleanup(func() { f.Close(t.Context()) })
			cfg := Config{SegmentBytes: 3000, SegmentAge: time.Hour, IndexIntervalBytes: 200}
			l := openLog(t, fs, "/d", cfg, Options{Flusher: f})
			var batches [][]byte
			for round := range 40 {
				batches = append(batches, appendN(t, l, 1+rng.IntN(5), 1+rng.IntN(3), rng.IntN(200))...)
				synced := l.SyncedOffset()
				var crashed *MemFS
				if tc.torn {
					crashed = fs.CrashCloneWith(func(string, int) int { return rng.IntN(400) })
				} else {
					crashed = fs.CrashClone()
				}
				l2, err := Open("/d", cfg, Options{FS: crashed, FileCache: testFiles})
				if err != nil {
					t.Fatalf("round %d: Open after power cut: %v", round, err)
				}
				if l2.NextOffset() < synced {
					t.Fatalf("round %d: lost synced data: NextOffset %d < synced %d", round, l2.NextOffset(), synced)
				}
				got := readAllBatches(t, l2)
				if !slices.EqualFunc(got, batches[:len(got)], bytes.Equal) {
					t.Fatalf("round %d: recovered batches differ", round)
				}
				l2.Close()
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			l2 := openLog(t, fs.CrashClone(), "/d", cfg, Options{})
			if got := readAllBatches(t, l2); !slices.EqualFunc(got, batches, bytes.Equal) {
				t.Fatalf("after Sync a power cut lost data: %d of %d batches", len(got), len(batches))
			}
		})
	}
}

func TestUnsyncedLostOnPowerCut(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, "/d", testConfig(), Options{})
	appendN(t, l, 5, 1, 10)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 5, 1, 10)
	if l.SyncedOffset() != 5 {
		t.Fatalf("SyncedOffset %d, want 5 (no flusher)", l.SyncedOffset())
	}
	l2 := openLog(t, fs.CrashClone(), "/d", testConfig(), Options{})
	if l2.NextOffset() != 5 {
		t.Fatalf("after power cut NextOffset %d, want 5", l2.NextOffset())
	}
}

// TestRecoverySyncsWhatItKeeps: after a process crash (kill -9) the
// recovered tail may exist only in the page cache. Open must make it
// durable before it reports it synced, so a power cut after the restart
// loses nothing Open served as synced.
func TestRecoverySyncsWhatItKeeps(t *testing.T) {
	fs := NewMemFS()
	cfg := testConfig()
	l := openLog(t, fs, "/d", cfg, Options{})
	var want [][]byte
	for range 20 { // several segments, none synced
		b := simpleBatch(l.NextOffset(), 3, 40)
		if err := l.Append(b); err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
	}
	// kill -9: reopen the same files without Close.
	l2 := openLog(t, fs, "/d", cfg, Options{})
	if got := l2.SyncedOffset(); got != l2.NextOffset() {
		t.Fatalf("synced offset %d after recovery, log end %d", got, l2.NextOffset())
	}
	// Power cut right after the restart.
	l3 := openLog(t, fs.CrashClone(), "/d", cfg, Options{})
	if got := readAllBatches(t, l3); len(got) != len(want) {
		t.Fatalf("%d of %d batches survive a power cut after recovery reported them synced", len(got), len(want))
	}
}
