package raftlog

import (
	"strings"
	"testing"

	"github.com/sluice-io/sluice/log"
)

func TestStableSurvivesPowerCut(t *testing.T) {
	fs := log.NewMemFS()
	if err := fs.MkdirAll("/p"); err != nil {
		t.Fatal(err)
	}
	s, err := OpenStable("/p", fs)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 0 {
		t.Fatalf("unset term = %d, %v; want 0, nil", v, err)
	}
	if _, err := s.Get([]byte("LastVoteCand")); err == nil || err.Error() != "not found" {
		t.Fatalf("unset key: %v, want not found", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	after, err := OpenStable("/p", fs.CrashClone())
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := after.GetUint64([]byte("CurrentTerm")); v != 7 {
		t.Fatalf("term after power cut %d, want 7", v)
	}
	if v, _ := after.Get([]byte("LastVoteCand")); string(v) != "node-2" {
		t.Fatalf("vote after power cut %q, want node-2", v)
	}
}

// TestStableSlots checks the two-slot file: a save torn by a crash leaves
// the values before it, a file in the JSON format before is read and
// rewritten, a value set again writes nothing, and a file with no valid
// slot is reported corrupt.
func TestStableSlots(t *testing.T) {
	open := func(t *testing.T, fs *log.MemFS) *Stable {
		t.Helper()
		s, err := OpenStable("/p", fs)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	overwrite := func(t *testing.T, fs *log.MemFS, b []byte, off int64) {
		t.Helper()
		f, err := fs.OpenFile("/p/"+StableFile, false)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	term := func(t *testing.T, s *Stable) uint64 {
		t.Helper()
		v, err := s.GetUint64([]byte("CurrentTerm"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	newFS := func(t *testing.T) *log.MemFS {
		fs := log.NewMemFS()
		if err := fs.MkdirAll("/p"); err != nil {
			t.Fatal(err)
		}
		return fs
	}
	t.Run("torn save keeps the values before", func(t *testing.T) {
		fs := newFS(t)
		s := open(t, fs)
		for term := uint64(1); term <= 3; term++ {
			if err := s.SetUint64([]byte("CurrentTerm"), term); err != nil {
				t.Fatal(err)
			}
		}
		// Term 3 went to the slot of seq 4 (slot 0); tear it.
		overwrite(t, fs, []byte("garbage"), 8)
		if got := term(t, open(t, fs)); got != 2 {
			t.Fatalf("term after a torn save %d, want 2", got)
		}
	})
	t.Run("format before is read and rewritten", func(t *testing.T) {
		fs := newFS(t)
		f, err := fs.OpenFile("/p/"+StableFile, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(`{"CurrentTerm":"AAAAAAAAAAk="}`), 0); err != nil {
			t.Fatal(err)
		}
		f.Sync()
		f.Close()
		s := open(t, fs)
		if got := term(t, s); got != 9 {
			t.Fatalf("term from the JSON file %d, want 9", got)
		}
		if err := s.SetUint64([]byte("CurrentTerm"), 10); err != nil {
			t.Fatal(err)
		}
		if got := term(t, open(t, fs.CrashClone())); got != 10 {
			t.Fatalf("term after rewrite and set %d, want 10", got)
		}
	})
	t.Run("same value writes nothing", func(t *testing.T) {
		fs := newFS(t)
		s := open(t, fs)
		if err := s.SetUint64([]byte("CurrentTerm"), 5); err != nil {
			t.Fatal(err)
		}
		seq := s.seq
		if err := s.SetUint64([]byte("CurrentTerm"), 5); err != nil {
			t.Fatal(err)
		}
		if s.seq != seq {
			t.Fatalf("seq %d after setting the same value, want %d", s.seq, seq)
		}
	})
	t.Run("no valid slot is corrupt", func(t *testing.T) {
		fs := newFS(t)
		s := open(t, fs)
		if err := s.SetUint64([]byte("CurrentTerm"), 5); err != nil {
			t.Fatal(err)
		}
		overwrite(t, fs, []byte("xx"), 0)
		overwrite(t, fs, []byte("xx"), stableSlotSize)
		if _, err := OpenStable("/p", fs); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("open with no valid slot: %v, want corrupt", err)
		}
	})
}
