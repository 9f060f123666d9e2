package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/sluice-io/sluice/log"
)

// model is what the store should hold: every entry by index, and for
// segment entries the offset their batch got.
type model struct {
	entries map[uint64]*raft.Log
	offsets map[uint64]int64
	first   uint64
	last    uint64
}

func newModel() *model {
	return &model{entries: map[uint64]*raft.Log{}, offsets: map[uint64]int64{}}
}

func (m *model) store(t *testing.T, s *Store, l *log.Log, entries ...*raft.Log) {
	t.Helper()
	offset := l.NextOffset()
	for _, e := range entries {
		c := *e
		c.Data = bytes.Clone(e.Data)
		m.entries[e.Index] = &c
		if isSegmentEntry(e) {
			m.offsets[e.Index] = offset
			h, _ := log.ParseBatchHeader(e.Data)
			offset += int64(h.LastOffsetDelta) + 1
		}
		if m.first == 0 {
			m.first = e.Index
		}
		m.last = e.Index
	}
	if err := s.StoreLogs(entries); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
}

// check compares every index of the store with the model.
func (m *model) check(t *testing.T, s *Store) {
	t.Helper()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != m.first || last != m.last {
		t.Fatalf("store holds [%d, %d], want [%d, %d]", first, last, m.first, m.last)
	}
	for idx := m.first; idx <= m.last && m.first != 0; idx++ {
		var got raft.Log
		if err := s.GetLog(idx, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", idx, err)
		}
		want := m.entries[idx]
		if got.Index != idx || got.Term != want.Term || got.Type != want.Type {
			t.Fatalf("GetLog(%d) = index %d term %d type %v, want term %d type %v", idx, got.Index, got.Term, got.Type, want.Term, want.Type)
		}
		if !isSegmentEntry(want) {
			if !bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) {
				t.Fatalf("GetLog(%d) data %q ext %v, want %q %v", idx, got.Data, got.Extensions, want.Data, want.Extensions)
			}
			continue
		}
		h, err := log.ParseBatchHeader(got.Data)
		if err != nil {
			t.Fatalf("GetLog(%d): %v", idx, err)
		}
		if h.BaseOffset != m.offsets[idx] || h.PartitionLeaderEpoch != int32(want.Term) {
			t.Fatalf("GetLog(%d): batch at offset %d epoch %d, want offset %d epoch %d", idx, h.BaseOffset, h.PartitionLeaderEpoch, m.offsets[idx], want.Term)
		}
		// Same records as stored: compare from the attributes on (the
		// CRC-covered part), which the store never changes.
		if !bytes.Equal(got.Data[21:], want.Data[21:]) {
			t.Fatalf("GetLog(%d): batch bytes differ from those stored", idx)
		}
	}
	for _, idx := range []uint64{m.first - 1, m.last + 1} {
		if idx == 0 {
			continue
		}
		var got raft.Log
		if err := s.GetLog(idx, &got); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) outside [%d, %d] = %v, want ErrLogNotFound", idx, m.first, m.last, err)
		}
	}
}

func (m *model) deleteRange(t *testing.T, s *Store, lo, hi uint64) {
	t.Helper()
	if err := s.DeleteRange(lo, hi); err != nil {
		t.Fatalf("DeleteRange(%d, %d): %v", lo, hi, err)
	}
	for i := lo; i <= hi; i++ {
		delete(m.entries, i)
		delete(m.offsets, i)
	}
	switch {
	case hi >= m.last && lo <= m.first:
		m.first, m.last = 0, 0
	case hi >= m.last:
		m.last = lo - 1
	default:
		m.first = hi + 1
	}
}

func openStore(t *testing.T, fs log.FS, dir string) (*Store, *log.Log) {
	t.Helper()
	l := openLog(t, fs, dir)
	s, err := Open(dir, l, Options{FS: fs})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, l
}

func closeStore(t *testing.T, s *Store, l *log.Log) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// mixed stores entries first..first+n-1 mixing batches with Raft's own
// entries and admin commands, in calls of varying size.
func mixed(t *testing.T, m *model, s *Store, l *log.Log, first uint64, n int, term uint64) {
	t.Helper()
	var pending []*raft.Log
	for i := range n {
		idx := first + uint64(i)
		var e *raft.Log
		switch {
		case i%17 == 3:
			e = noop(idx, term)
		case i%29 == 5:
			e = conf(idx, term, fmt.Sprintf("conf-%d", idx))
		case i%31 == 7:
			e = adminCmd(idx, term, fmt.Sprintf("admin-%d", idx))
		default:
			e = cmd(idx, term, 1+i%5, fmt.Sprintf("r%d", idx))
		}
		pending = append(pending, e)
		if len(pending) == 1+i%7 {
			m.store(t, s, l, pending...)
			pending = nil
		}
	}
	if len(pending) > 0 {
		m.store(t, s, l, pending...)
	}
}

func TestStoreRoundTripAndRestart(t *testing.T) {
	for _, name := range []string{"os", "mem"} {
		t.Run(name, func(t *testing.T) {
			var fs log.FS = log.OSFS{}
			dir := t.TempDir()
			if name == "mem" {
				fs, dir = log.NewMemFS(), "/p"
			}
			s, l := openStore(t, fs, dir)
			m := newModel()
			m.check(t, s)
			mixed(t, m, s, l, 1, 400, 3)
			m.check(t, s)
			closeStore(t, s, l)

			s, l = openStore(t, fs, dir)
			m.check(t, s)
			mixed(t, m, s, l, 401, 50, 4)
			m.check(t, s)
			closeStore(t, s, l)
		})
	}
}

func TestStoreRejectsGapsAndBadBatches(t *testing.T) {
	s, l := openStore(t, log.NewMemFS(), "/p")
	defer closeStore(t, s, l)
	m := newModel()
	m.store(t, s, l, noop(1, 1), cmd(2, 1, 2, "a"))
	if err := s.StoreLogs([]*raft.Log{cmd(4, 1, 1, "gap")}); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("gap: %v, want ErrNotContiguous", err)
	}
	two := append(testBatch(1, "x"), testBatch(1, "y")...)
	if err := s.StoreLogs([]*raft.Log{{Index: 3, Term: 1, Type: raft.LogCommand, Data: two}}); err == nil {
		t.Fatal("two batches in one entry stored")
	}
	if err := s.StoreLogs([]*raft.Log{{Index: 3, Term: 1, Type: raft.LogCommand, Data: []byte("not a batch")}}); err == nil {
		t.Fatal("garbage stored as a batch")
	}
	m.check(t, s)
	if l.NextOffset() != 2 {
		t.Fatalf("log end %d after refused entries, want 2", l.NextOffset())
	}
}

func TestStoreDeleteRange(t *testing.T) {
	fs := log.NewMemFS()
	s, l := openStore(t, fs, "/p")
	m := newModel()
	mixed(t, m, s, l, 1, 300, 2)

	// Head compaction after a snapshot: the batches stay in the log.
	end := l.NextOffset()
	m.deleteRange(t, s, 1, 150)
	m.check(t, s)
	if l.NextOffset() != end {
		t.Fatalf("head compaction moved the log end from %d to %d", end, l.NextOffset())
	}
	if got := s.FirstOffset(); got <= 0 || got >= end {
		t.Fatalf("FirstOffset %d after head compaction, want inside (0, %d)", got, end)
	}

	// A conflicting suffix: the batches go.
	m.deleteRange(t, s, 251, 300)
	m.check(t, s)
	var last raft.Log
	if err := s.GetLog(250, &last); err != nil {
		t.Fatal(err)
	}
	if isSegmentEntry(m.entries[250]) {
		h, _ := log.ParseBatchHeader(last.Data)
		if l.NextOffset() != h.NextOffset() {
			t.Fatalf("log end %d after truncation, want %d", l.NextOffset(), h.NextOffset())
		}
	}
	// New entries of a later term continue from there.
	mixed(t, m, s, l, 251, 40, 5)
	m.check(t, s)

	// A middle range is refused.
	if err := s.DeleteRange(200, 210); err == nil {
		t.Fatal("middle range deleted")
	}
	closeStore(t, s, l)
	s, l = openStore(t, fs, "/p")
	m.check(t, s)

	// Everything, as a conflict from the first index.
	m.deleteRange(t, s, m.first, m.last)
	m.check(t, s)
	mixed(t, m, s, l, 151, 10, 6)
	m.check(t, s)
	closeStore(t, s, l)
	s, l = openStore(t, fs, "/p")
	m.check(t, s)
	closeStore(t, s, l)
}

func TestStoreReset(t *testing.T) {
	fs := log.NewMemFS()
	s, l := openStore(t, fs, "/p")
	m := newModel()
	mixed(t, m, s, l, 1, 50, 1)
	if err := s.Reset(1000); err != nil {
		t.Fatal(err)
	}
	m = newModel()
	m.check(t, s)
	if err := s.StoreLogs([]*raft.Log{noop(999, 2)}); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("entry before the reset point: %v, want ErrNotContiguous", err)
	}
	closeStore(t, s, l)
	s, l = openStore(t, fs, "/p")
	if err := s.StoreLogs([]*raft.Log{noop(999, 2)}); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("entry before the reset point after restart: %v, want ErrNotContiguous", err)
	}
	end := l.NextOffset()
	m.store(t, s, l, cmd(1000, 2, 3, "after"), noop(1001, 2))
	m.check(t, s)
	if m.offsets[1000] != end {
		t.Fatalf("first batch after reset at %d, want the log end %d", m.offsets[1000], end)
	}
	closeStore(t, s, l)
}

// TestStoreCrash cuts power after every call of a scripted run, keeping a
// random part of what was not synced, and checks that recovery gives a
// prefix of the acknowledged entries at least as long as what was
// acknowledged.
func TestStoreCrash(t *testing.T) {
	fs := log.NewMemFS()
	s, l := openStore(t, fs, "/p")
	m := newModel()
	for step := range 40 {
		first := m.last + 1
		mixed(t, m, s, l, first, 1+step%9, uint64(1+step/10))
		if step%13 == 12 {
			m.deleteRange(t, s, m.first, m.first+3)
		}
		for _, keep := range []int{0, 1, 1 << 30} {
			clone := fs.CrashCloneWith(func(string, int) int { return keep })
			cs, cl := openStore(t, clone, "/p")
			m.check(t, cs)
			closeStore(t, cs, cl)
		}
	}
	closeStore(t, s, l)
}
