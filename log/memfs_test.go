package log

import (
	"errors"
	iofs "io/fs"
	"slices"
	"testing"
)

func writeFile(t *testing.T, fs FS, path, data string, sync bool) File {
	t.Helper()
	f, err := fs.OpenFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(data), 0); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestMemFSCrashClone(t *testing.T) {
	fs := NewMemFS()
	if err := fs.MkdirAll("/a/b"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, fs, "/a/b/synced", "durable", true)
	f := writeFile(t, fs, "/a/b/unsynced-entry", "lost", true) // data synced, entry not
	if err := fs.SyncDir("/a/b"); err != nil {
		t.Fatal(err)
	}
	// After the SyncDir: a new file, an append, a removal.
	writeFile(t, fs, "/a/b/new", "new", true)
	if err := fs.Remove("/a/b/unsynced-entry"); err != nil {
		t.Fatal(err)
	}
	g, _ := fs.OpenFile("/a/b/synced", false)
	g.WriteAt([]byte("+tail"), 7)

	for _, tc := range []struct {
		name      string
		clone     *MemFS
		wantNames []string
		wantData  string
	}{
		{"clean cut", fs.CrashClone(), []string{"synced", "unsynced-entry"}, "durable"},
		{"torn", fs.CrashCloneWith(func(string, int) int { return 2 }), []string{"synced", "unsynced-entry"}, "durable+t"},
		{"torn beyond", fs.CrashCloneWith(func(string, int) int { return 99 }), []string{"synced", "unsynced-entry"}, "durable+tail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names, err := tc.clone.ReadDir("/a/b")
			if err != nil || !slices.Equal(names, tc.wantNames) {
				t.Fatalf("ReadDir = %v, %v; want %v", names, err, tc.wantNames)
			}
			h, _ := tc.clone.OpenFile("/a/b/synced", false)
			b, _ := readAll(h)
			if string(b) != tc.wantData {
				t.Fatalf("data %q, want %q", b, tc.wantData)
			}
		})
	}
	// The removed file is still usable through its open handle.
	if _, err := f.WriteAt([]byte("X"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, iofs.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestMemFSOperations(t *testing.T) {
	fs := NewMemFS()
	if _, err := fs.OpenFile("/missing/x", true); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("open in missing dir: %v", err)
	}
	fs.MkdirAll("/d/sub")
	writeFile(t, fs, "/d/a", "a", false)
	if err := fs.Rename("/d/a", "/d/b"); err != nil {
		t.Fatal(err)
	}
	if names, _ := fs.ReadDir("/d"); !slices.Equal(names, []string{"b", "sub"}) {
		t.Fatalf("names %v", names)
	}
	if err := fs.Remove("/d"); err == nil {
		t.Fatal("removed a non-empty directory")
	}
	if err := fs.RemoveAll("/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadDir("/d/sub"); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("ReadDir after RemoveAll: %v", err)
	}
	if err := fs.RemoveAll("/nothing"); err != nil {
		t.Fatal(err)
	}
	fs.MkdirAll("/e")
	f := writeFile(t, fs, "/e/f", "hello", false)
	if err := f.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.Size(); n != 2 {
		t.Fatalf("size %d after truncate", n)
	}
	buf := make([]byte, 4)
	if n, err := f.ReadAt(buf, 0); n != 2 || err == nil {
		t.Fatalf("short read = %d, %v", n, err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"tiny segment", func(c *Config) { c.SegmentBytes = 10 }, false},
		{"huge segment", func(c *Config) { c.SegmentBytes = 1 << 32 }, false},
		{"zero age", func(c *Config) { c.SegmentAge = 0 }, false},
		{"negative interval", func(c *Config) { c.IndexIntervalBytes = -1 }, false},
		{"zero interval", func(c *Config) { c.IndexIntervalBytes = 0 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.cfg(&cfg)
			err := cfg.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("Validate = %v", err)
			}
			if !tc.ok {
				if _, err := Open("/x", cfg, Options{FS: NewMemFS()}); !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("Open accepted an invalid config: %v", err)
				}
			}
		})
	}
}

func TestLookup(t *testing.T) {
	entries := []indexEntry{{2, 100}, {5, 200}, {9, 300}}
	times := []timeEntry{{10, 2}, {10, 5}, {40, 9}}
	for _, tc := range []struct {
		rel     uint32
		wantPos int64
	}{{0, 0}, {1, 0}, {2, 100}, {4, 100}, {5, 200}, {8, 200}, {9, 300}, {1000, 300}} {
		if pos, _ := lookupIndex(entries, tc.rel); pos != tc.wantPos {
			t.Errorf("lookupIndex(%d) = %d, want %d", tc.rel, pos, tc.wantPos)
		}
	}
	for _, tc := range []struct {
		ts   int64
		want int
	}{{5, -1}, {10, -1}, {11, 1}, {40, 1}, {41, 2}} {
		if got := lookupTime(times, tc.ts); got != tc.want {
			t.Errorf("lookupTime(%d) = %d, want %d", tc.ts, got, tc.want)
		}
	}
}

// TestSegmentOutlivesRemoval checks the reference counting: a reader's
// handle keeps a segment's .log open across TruncateTo and Close, and once
// the segment is gone no new handle is given out.
func TestSegmentOutlivesRemoval(t *testing.T) {
	l := openLog(t, NewMemFS(), "/d", testConfig(), Options{})
	appendN(t, l, 40, 2, 100)
	v := l.state.Load().active
	h, err := v.seg.openLog()
	if err != nil {
		t.Fatalf("open a live segment: %v", err)
	}
	if err := l.TruncateTo(0); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, BatchHeaderSize)
	if _, err := h.f.ReadAt(buf, 0); err != nil {
		t.Fatalf("read through a held handle: %v", err)
	}
	if _, err := ParseBatchHeader(buf); err != nil {
		t.Fatal(err)
	}
	h.release()
	if _, err := v.seg.openLog(); !errors.Is(err, errRetry) {
		t.Fatalf("open after the segment is gone: %v, want errRetry", err)
	}
	if _, err := h.f.ReadAt(buf, 0); !errors.Is(err, iofs.ErrClosed) {
		t.Fatalf("read after last release: %v", err)
	}
}
