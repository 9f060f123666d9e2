package raftlog

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sluice-io/sluice/log"
)

// SidecarFile is the name of the sidecar in a partition directory.
const SidecarFile = "raft.sidecar"

// markEvery is how many segment entries may follow a mark before the next
// one: GetLog walks at most this many batch headers past a cursor miss.
const markEvery = 64

// maxKeptScratch bounds the copy buffer kept between calls.
const maxKeptScratch = 1 << 20

// rewriteBytes is the sidecar size above which DeleteRange rewrites it
// with only the live records.
const rewriteBytes = 1 << 20

var (
	// ErrClosed reports use of a closed Store.
	ErrClosed = errors.New("raftlog: store closed")
	// ErrNotContiguous reports StoreLogs entries whose indexes do not
	// follow the last stored one: the segment log cannot hold gaps.
	ErrNotContiguous = errors.New("raftlog: entries not contiguous")
)

// Segments is what the store needs of a partition's segment log;
// *log.Log implements it. The store is its only writer while the partition
// is replicated.
type Segments interface {
	// NextOffset is the log end offset.
	NextOffset() int64
	// Append writes whole batches whose first base offset is NextOffset.
	Append(b []byte) error
	// Read returns whole batches from an offset (log.Log.Read).
	Read(dst []byte, r log.ReadRequest) ([]byte, error)
	// BatchHeaders calls fn for the headers of the batches from an offset.
	BatchHeaders(from int64, fn func(log.BatchHeader) bool) error
	// TruncateTo durably removes every batch at or after offset.
	TruncateTo(offset int64) error
	// Sync makes every appended batch durable.
	Sync() error
}

var _ Segments = (*log.Log)(nil)

var (
	_ raft.LogStore          = (*Store)(nil)
	_ raft.MonotonicLogStore = (*Store)(nil)
)

// Options are the store's collaborators.
type Options struct {
	// FS is the filesystem of the sidecar; nil means the OS's.
	FS log.FS
	// OnTruncate, if set, is called after DeleteRange removed batches
	// from the end of the segment log (a Raft log conflict), with the new
	// log end, so the replica can rebuild what it derived from them. It is
	// called with the store's lock held: it must not call the store.
	OnTruncate func(offset int64)
	// OnSync, if set, is told of every sync of the segment log that made
	// appended batches durable (metrics); it must not block.
	OnSync log.SyncObserver
	// OnFailure, if set, is told once, with the error, when a storage
	// failure (log.IsStorageError) makes the store refuse every later
	// write (Failed). It is called with the store's lock held, from the
	// goroutine that called the store (one of Raft's): it must not block
	// nor call the store or Raft.
	OnFailure func(err error)
}

// mark says that the segment entry of Raft index index is the batch whose
// base offset is offset.
type mark struct {
	index  uint64
	offset int64
}

// cursor remembers where the last segment entry GetLog found lies, so the
// sequential reads of replication walk one header each.
type cursor struct {
	valid  bool
	index  uint64 // a segment entry
	offset int64  // its base offset
	next   int64  // the offset after it
}

// Store is a raft.LogStore that keeps every Raft entry that is a record
// batch in the partition's segment log (written once, where consumers
// read it) and every other entry in a small sidecar file. Safe for
// concurrent use; one mutex serialises every method.
type Store struct {
	segs       Segments
	fs         log.FS
	path       string
	onTruncate func(offset int64)
	onSync     log.SyncObserver
	onFailure  func(error)

	// firstOffset is what FirstOffset answers: the first mark's offset,
	// or -1 for none; written under mu, read without it.
	firstOffset atomic.Int64

	mu sync.Mutex
	// first and last are the Raft indexes held, [first, last]; both 0
	// when empty. expect, when non-zero, is the index the next StoreLogs
	// must start at (after a reset or a truncation).
	first, last, expect uint64
	// extra holds the sidecar's entries by index, first <= index <= last.
	extra map[uint64]raft.Log
	// marks, sorted by index, locate segment entries. Invariant: the first
	// segment entry at or after first, if any, has a mark.
	marks []mark
	// sinceMark counts segment entries stored after the newest mark.
	sinceMark int
	cur       cursor

	file    log.File
	size    int64  // bytes of the sidecar in use
	scrap   []byte // sidecar records being built
	batches []byte // the stamped copy of the batch being appended
	// failed, once set, fails every write: a write or fsync of the
	// segments or the sidecar failed. After a failed fsync nothing says
	// what reached the disk (the kernel may have dropped the dirty pages
	// and marked them clean: fsyncgate), so the store never retries; Open
	// recovers from the files. Read without mu through failedErr.
	failed    error
	failedErr atomic.Pointer[error]
	closed    bool
}

// Open opens (creating if need be) the sidecar in dir and rebuilds the
// index map from it and from the batch headers of segs after its newest
// mark. A torn sidecar tail is truncated.
func Open(dir string, segs Segments, opts Options) (*Store, error) {
	fs := opts.FS
	if fs == nil {
		fs = log.OSFS{}
	}
	s := &Store{segs: segs, fs: fs, path: filepath.Join(dir, SidecarFile), extra: map[uint64]raft.Log{}, onTruncate: opts.OnTruncate, onSync: opts.OnSync, onFailure: opts.OnFailure}
	f, err := fs.OpenFile(s.path, true)
	if err != nil {
		return nil, fmt.Errorf("raftlog: open sidecar %s: %w", s.path, err)
	}
	s.file = f
	if err := s.load(); err != nil {
		_ = f.Close()
		return nil, err
	}
	s.publishFirst()
	return s, nil
}

// load reads the sidecar and recovers the store's state.
func (s *Store) load() error {
	size, err := s.file.Size()
	if err != nil {
		return fmt.Errorf("raftlog: size of %s: %w", s.path, err)
	}
	if size == 0 {
		s.scrap = appendHeader(s.scrap[:0])
		if err := s.write(s.scrap); err != nil {
			return err
		}
		if err := s.sync(); err != nil {
			return err
		}
		if err := s.fs.SyncDir(filepath.Dir(s.path)); err != nil {
			return fmt.Errorf("raftlog: sync directory of %s: %w", s.path, err)
		}
		return nil
	}
	b := make([]byte, size)
	if _, err := s.file.ReadAt(b, 0); err != nil {
		return fmt.Errorf("raftlog: read %s: %w", s.path, err)
	}
	if err := checkHeader(b); err != nil {
		return fmt.Errorf("raftlog: %s: %w", s.path, err)
	}
	pos := headerSize
	for pos < len(b) {
		r, n, err := decodeRecord(b[pos:])
		if err != nil {
			break // a torn tail: nothing after it was acknowledged
		}
		s.replay(&r)
		pos += n
	}
	if pos < len(b) {
		if err := s.file.Truncate(int64(pos)); err != nil {
			return fmt.Errorf("raftlog: truncate torn tail of %s at %d: %w", s.path, pos, err)
		}
	}
	s.size = int64(pos)
	return s.recoverLast()
}

// replay applies one sidecar record to the in-memory state.
func (s *Store) replay(r *record) {
	switch r.kind {
	case kindEntry:
		e := r.entry
		e.Data = slices.Clone(e.Data)
		e.Extensions = slices.Clone(e.Extensions)
		s.extra[r.index] = e
		if s.first == 0 || r.index < s.first {
			s.first = r.index
		}
	case kindMark:
		s.marks = append(s.marks, mark{index: r.index, offset: r.offset})
		slices.SortFunc(s.marks, func(a, b mark) int { return cmp.Compare(a.index, b.index) })
		s.marks = slices.CompactFunc(s.marks, func(a, b mark) bool { return a.index == b.index })
		if s.first == 0 || r.index < s.first {
			s.first = r.index
		}
	case kindTruncate:
		s.dropFrom(r.index)
		if s.first != 0 && r.index <= s.first {
			s.first = 0
		}
		s.expect = r.index
	case kindFirst:
		s.dropBelow(r.index)
		s.first = r.index
	case kindReset:
		s.first, s.last = 0, 0
		clear(s.extra)
		s.marks = s.marks[:0]
		s.expect = r.index
	}
}

// recoverLast finds the last index held after replay: it walks the batch
// headers after the newest mark that still points at a batch, then the
// sidecar entries that follow without a gap. Marks past the recovered log
// end and entries after a gap were never acknowledged: they are dropped,
// and the sidecar is rewritten without them so that a later batch at the
// same offset is never taken for theirs.
func (s *Store) recoverLast() error {
	dropped := false
	var next uint64 // the index after the last segment entry; 0 if none
	for len(s.marks) > 0 {
		m := s.marks[len(s.marks)-1]
		idx, ok, err := s.walkToEnd(m)
		if err != nil {
			return err
		}
		if ok {
			next = idx
			break
		}
		s.marks = s.marks[:len(s.marks)-1]
		dropped = true
	}
	if s.first == 0 {
		return nil // empty; expect says what comes next
	}
	last := s.first - 1
	if next != 0 {
		last = next - 1
	}
	for s.hasExtra(last + 1) {
		last++
	}
	for idx := range s.extra {
		if idx > last || idx < s.first {
			delete(s.extra, idx)
			dropped = true
		}
	}
	if last < s.first {
		s.expect = s.first
		s.first, s.last = 0, 0
	} else {
		s.last, s.expect = last, 0
	}
	if dropped {
		return s.rewrite()
	}
	return nil
}

// walkToEnd walks from mark m to the log end and returns the index after
// the last segment entry; ok is false when m no longer points at a batch.
func (s *Store) walkToEnd(m mark) (next uint64, ok bool, err error) {
	if m.offset >= s.segs.NextOffset() {
		return 0, false, nil
	}
	idx, expected := m.index, m.offset
	bad := false
	err = s.segs.BatchHeaders(m.offset, func(h log.BatchHeader) bool {
		if h.BaseOffset != expected {
			bad = true
			return false
		}
		for s.hasExtra(idx) {
			idx++
		}
		idx++
		expected = h.NextOffset()
		return true
	})
	if err != nil {
		return 0, false, fmt.Errorf("raftlog: walk batch headers from offset %d: %w", m.offset, err)
	}
	if bad || expected == m.offset {
		return 0, false, nil
	}
	return idx, true, nil
}

func (s *Store) hasExtra(idx uint64) bool {
	_, ok := s.extra[idx]
	return ok
}

// dropFrom forgets every entry and mark at or after idx.
func (s *Store) dropFrom(idx uint64) {
	for i := range s.extra {
		if i >= idx {
			delete(s.extra, i)
		}
	}
	n, _ := slices.BinarySearchFunc(s.marks, idx, func(m mark, t uint64) int { return cmp.Compare(m.index, t) })
	s.marks = s.marks[:n]
	s.cur.valid = false
}

// dropBelow forgets every entry and mark below idx.
func (s *Store) dropBelow(idx uint64) {
	for i := range s.extra {
		if i < idx {
			delete(s.extra, i)
		}
	}
	n, _ := slices.BinarySearchFunc(s.marks, idx, func(m mark, t uint64) int { return cmp.Compare(m.index, t) })
	s.marks = slices.Delete(s.marks, 0, n)
	if s.cur.valid && s.cur.index < idx {
		s.cur.valid = false
	}
}

// IsMonotonic reports true: the segment log cannot hold gaps, so after a
// snapshot install Raft removes every entry instead of leaving a gap.
func (s *Store) IsMonotonic() bool { return true }

// FirstIndex returns the first index held, 0 when empty.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.first, nil
}

// LastIndex returns the last index held, 0 when empty.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.last, nil
}

// FirstOffset returns the base offset of the first segment entry the
// store holds, or the log end when it holds none: retention and
// compaction must leave every batch at or after it alone.
//
// It takes no lock (callers hold the replica's, which the store takes
// after its own): it reads what the last change of the store published.
func (s *Store) FirstOffset() int64 {
	if o := s.firstOffset.Load(); o >= 0 {
		return o
	}
	return s.segs.NextOffset()
}

// publishFirst publishes the first mark's offset for FirstOffset (-1: no
// mark, the log end). s.mu is held.
func (s *Store) publishFirst() {
	if len(s.marks) == 0 {
		s.firstOffset.Store(-1)
		return
	}
	s.firstOffset.Store(s.marks[0].offset)
}

// GetLog reads the entry at index into out. An index the store does not
// hold, or whose batch is no longer readable, is raft.ErrLogNotFound (Raft
// then sends a snapshot). out.Data of a segment entry is a fresh copy of
// the stored batch, base offset and epoch included.
func (s *Store) GetLog(index uint64, out *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.first == 0 || index < s.first || index > s.last {
		return raft.ErrLogNotFound
	}
	if e, ok := s.extra[index]; ok {
		*out = e
		out.Data = slices.Clone(e.Data)
		out.Extensions = slices.Clone(e.Extensions)
		return nil
	}
	offset, next, ok, err := s.locate(index)
	if err != nil {
		return err
	}
	if !ok {
		return raft.ErrLogNotFound
	}
	b, err := s.segs.Read(nil, log.ReadRequest{Offset: offset, MaxOffset: math.MaxInt64, MaxBytes: 1, MinOneBatch: true})
	if err != nil {
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			return raft.ErrLogNotFound
		}
		return fmt.Errorf("raftlog: read entry %d at offset %d: %w", index, offset, err)
	}
	h, err := log.ParseBatchHeader(b)
	if err != nil || h.BaseOffset != offset || h.Size() != len(b) {
		return fmt.Errorf("raftlog: entry %d at offset %d: batch read back does not match (%v)", index, offset, err)
	}
	*out = raft.Log{Index: index, Term: uint64(h.PartitionLeaderEpoch), Type: raft.LogCommand, Data: b}
	s.cur = cursor{valid: true, index: index, offset: offset, next: next}
	return nil
}

// locate returns the base offset and next offset of the segment entry of
// index (which is not a sidecar entry), walking batch headers from the
// cursor or the nearest mark at or below it.
func (s *Store) locate(index uint64) (offset, next int64, ok bool, err error) {
	n, found := slices.BinarySearchFunc(s.marks, index, func(m mark, t uint64) int { return cmp.Compare(m.index, t) })
	if !found {
		n--
	}
	if n < 0 {
		return 0, 0, false, nil
	}
	idx, from := s.marks[n].index, s.marks[n].offset
	if s.cur.valid && s.cur.index <= index && s.cur.index >= idx {
		if s.cur.index == index {
			return s.cur.offset, s.cur.next, true, nil
		}
		idx, from = s.cur.index+1, s.cur.next
		for s.hasExtra(idx) {
			idx++
		}
	}
	expected := from
	err = s.segs.BatchHeaders(from, func(h log.BatchHeader) bool {
		if h.BaseOffset != expected {
			return false // a hole: not readable as Raft entries any more
		}
		for s.hasExtra(idx) {
			idx++
		}
		if idx == index {
			offset, next, ok = h.BaseOffset, h.NextOffset(), true
			return false
		}
		idx++
		expected = h.NextOffset()
		return idx <= index
	})
	if err != nil {
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			return 0, 0, false, nil
		}
		return 0, 0, false, fmt.Errorf("raftlog: locate entry %d from offset %d: %w", index, from, err)
	}
	return offset, next, ok, nil
}

// isSegmentEntry reports whether e is kept in the segment log: a command
// whose data is one record batch, marked by having no extensions.
// Commands that are not batches carry extensions (see package replication)
// and go to the sidecar with every other entry type.
func isSegmentEntry(e *raft.Log) bool {
	return e.Type == raft.LogCommand && len(e.Extensions) == 0
}

// StoreLog stores one entry.
func (s *Store) StoreLog(e *raft.Log) error { return s.StoreLogs([]*raft.Log{e}) }

// StoreLogs stores entries, which must follow the last stored index
// without a gap, and returns once they are durable. A segment entry's batch
// is stamped in place with its base offset (the log end) and with the
// entry's term as partition leader epoch, then appended to the segment
// log; every other entry is written to the sidecar.
//
// Order matters for recovery: the sidecar records of the call (entries and
// marks) are written, and synced when the call holds a Raft entry or the
// window's first mark, before any batch is written. A batch that reaches
// the disk without the sidecar entry before it would take that entry's
// index on recovery. The segment log is synced once per call.
//
// A write or fsync failure fails the store for good (see Failed).
func (s *Store) StoreLogs(entries []*raft.Log) error {
	if len(entries) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publishFirst()
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return s.failed
	}
	return s.check(s.storeLogs(entries))
}

// storeLogs is StoreLogs under s.mu.
func (s *Store) storeLogs(entries []*raft.Log) error {

	// Pass 1: check, assign offsets, build the sidecar records.
	s.scrap = s.scrap[:0]
	syncSidecar := false
	want := s.last + 1
	if s.first == 0 {
		want = s.expect
	}
	offset := s.segs.NextOffset()
	haveMark, sinceMark := len(s.marks) > 0, s.sinceMark
	for _, e := range entries {
		if want != 0 && e.Index != want {
			return fmt.Errorf("%w: entry %d stored after %d", ErrNotContiguous, e.Index, want-1)
		}
		want = e.Index + 1
		if !isSegmentEntry(e) {
			s.scrap = appendRecord(s.scrap, &record{kind: kindEntry, index: e.Index, entry: *e})
			syncSidecar = true
			continue
		}
		h, err := log.ParseBatchHeader(e.Data)
		if err != nil {
			return fmt.Errorf("raftlog: entry %d: %w", e.Index, err)
		}
		if h.Size() != len(e.Data) {
			return fmt.Errorf("raftlog: entry %d holds %d bytes, its batch %d: one batch per entry", e.Index, len(e.Data), h.Size())
		}
		if e.Term > math.MaxInt32 {
			return fmt.Errorf("raftlog: entry %d: term %d does not fit a leader epoch", e.Index, e.Term)
		}
		if !haveMark || sinceMark >= markEvery {
			// The window's first mark must survive a crash (invariant on
			// marks); later ones only shorten walks.
			syncSidecar = syncSidecar || !haveMark
			s.scrap = appendRecord(s.scrap, &record{kind: kindMark, index: e.Index, offset: offset})
			haveMark, sinceMark = true, 0
		}
		sinceMark++
		offset += int64(h.LastOffsetDelta) + 1
	}
	if len(s.scrap) > 0 {
		if err := s.write(s.scrap); err != nil {
			return err
		}
		if syncSidecar {
			if err := s.sync(); err != nil {
				return err
			}
		}
	}

	// Pass 2: copy each batch, stamp the copy and append it (one Append
	// per batch, so the log rolls at segment.bytes as for separate
	// produce requests). The entries' own bytes are never modified: Raft
	// may share them with its cache and, in memory, with other replicas.
	// One batch's copy at a time bounds the memory a call needs.
	before := s.segs.NextOffset()
	offset = before
	var written int64
	for _, e := range entries {
		if !isSegmentEntry(e) {
			continue
		}
		h, _ := log.ParseBatchHeader(e.Data) // checked in pass 1
		s.batches = append(s.batches[:0], e.Data...)
		log.SetBaseOffset(s.batches, offset)
		log.SetPartitionLeaderEpoch(s.batches, int32(e.Term))
		if err := s.segs.Append(s.batches); err != nil {
			return s.failStore(entries[0].Index, before, fmt.Errorf("raftlog: append entry %d at offset %d: %w", e.Index, offset, err))
		}
		offset += int64(h.LastOffsetDelta) + 1
		written += int64(len(e.Data))
	}
	if cap(s.batches) > maxKeptScratch {
		s.batches = nil
	}
	if written > 0 {
		start := time.Now()
		if err := s.segs.Sync(); err != nil {
			// No clean-up: after a failed fsync the files are left as they
			// are for Open to recover, never written again (fsyncgate).
			return fmt.Errorf("raftlog: sync segments for entries [%d, %d]: %w", entries[0].Index, entries[len(entries)-1].Index, err)
		}
		if s.onSync != nil {
			s.onSync(log.SyncInfo{Took: time.Since(start), Bytes: written})
		}
	}

	// Pass 3: the state.
	offset = before
	for _, e := range entries {
		if isSegmentEntry(e) {
			h, _ := log.ParseBatchHeader(e.Data)
			next := offset + int64(h.LastOffsetDelta) + 1
			if len(s.marks) == 0 || s.sinceMark >= markEvery {
				s.marks = append(s.marks, mark{index: e.Index, offset: offset})
				s.sinceMark = 0
			}
			s.sinceMark++
			s.cur = cursor{valid: true, index: e.Index, offset: offset, next: next}
			offset = next
		} else {
			c := *e
			c.Data = slices.Clone(e.Data)
			c.Extensions = slices.Clone(e.Extensions)
			s.extra[e.Index] = c
		}
		if s.first == 0 {
			s.first = e.Index
			s.expect = 0
		}
		s.last = e.Index
	}
	return nil
}

// failStore leaves the files of a StoreLogs whose append failed as a
// restart can use them: batches it appended are truncated away (the log
// end goes back to offset) and the sidecar records it wrote for entries
// from index on are cancelled by a truncate record, each as far as the
// disk allows. The store stays failed all the same (check): a disk that
// failed a write is not trusted with the next one.
func (s *Store) failStore(index uint64, offset int64, cause error) error {
	if s.segs.NextOffset() > offset {
		if err := s.segs.TruncateTo(offset); err != nil {
			return cause
		}
	}
	rec := appendRecord(nil, &record{kind: kindTruncate, index: index})
	if err := s.write(rec); err != nil {
		return cause
	}
	_ = s.sync() // cause is what the caller must hear of
	return cause
}

// check makes a storage failure (log.IsStorageError) sticky: the first
// one is kept, every later write returns it, and OnFailure is told. Other
// errors (a caller's mistake, a closed store) pass through. s.mu is held.
func (s *Store) check(err error) error {
	if err == nil || s.failed != nil || !log.IsStorageError(err) {
		return err
	}
	s.failed = err
	s.failedErr.Store(&err)
	if s.onFailure != nil {
		s.onFailure(err)
	}
	return err
}

// Failed returns the storage failure that made the store refuse writes,
// or nil. A failed store stays failed until the process restarts and
// Open recovers from the files: after a failed write or fsync nothing
// says what reached the disk. Safe for concurrent use; takes no lock.
func (s *Store) Failed() error {
	if p := s.failedErr.Load(); p != nil {
		return *p
	}
	return nil
}

// DeleteRange removes the entries [from, to]. From the head (from is the
// first index) it only moves the first index: the batches stay in the
// segment log until retention. To the tail (to is the last index) it
// truncates the segment log at the first removed batch. Removing a middle
// range is an error; Raft never asks for one.
//
// A write or fsync failure fails the store for good (see Failed).
func (s *Store) DeleteRange(from, to uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publishFirst()
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return s.failed
	}
	return s.check(s.deleteRange(from, to))
}

// deleteRange is DeleteRange under s.mu.
func (s *Store) deleteRange(from, to uint64) error {
	if s.first == 0 {
		return nil
	}
	from, to = max(from, s.first), min(to, s.last)
	if from > to {
		return nil
	}
	s.scrap = s.scrap[:0]
	switch {
	case to == s.last:
		offset, err := s.firstSegmentOffsetFrom(from)
		if err != nil {
			return err
		}
		if offset < s.segs.NextOffset() {
			if err := s.segs.TruncateTo(offset); err != nil {
				return fmt.Errorf("raftlog: truncate segments to offset %d for entries from %d: %w", offset, from, err)
			}
			if s.onTruncate != nil {
				s.onTruncate(offset)
			}
		}
		s.dropFrom(from)
		s.last = from - 1
		if s.last < s.first {
			s.first, s.last = 0, 0
		}
		s.expect = from
		s.sinceMark = markEvery // the next segment entry gets a mark
		s.scrap = appendRecord(s.scrap, &record{kind: kindTruncate, index: from})
	case from == s.first:
		newFirst := to + 1
		// Keep the invariant: the first segment entry of the new window
		// has a mark.
		idx, offset, ok, err := s.firstSegmentEntryFrom(newFirst)
		if err != nil {
			return err
		}
		if ok {
			s.marks = append(s.marks, mark{index: idx, offset: offset})
			slices.SortFunc(s.marks, func(a, b mark) int { return cmp.Compare(a.index, b.index) })
			s.marks = slices.CompactFunc(s.marks, func(a, b mark) bool { return a.index == b.index })
			s.scrap = appendRecord(s.scrap, &record{kind: kindMark, index: idx, offset: offset})
		}
		s.dropBelow(newFirst)
		s.first = newFirst
		s.scrap = appendRecord(s.scrap, &record{kind: kindFirst, index: newFirst})
	default:
		return fmt.Errorf("raftlog: delete of middle range [%d, %d] of [%d, %d]", from, to, s.first, s.last)
	}
	if s.size+int64(len(s.scrap)) > rewriteBytes {
		return s.rewrite()
	}
	if err := s.write(s.scrap); err != nil {
		return err
	}
	return s.sync()
}

// firstSegmentEntryFrom finds the first segment entry at or after idx.
func (s *Store) firstSegmentEntryFrom(idx uint64) (uint64, int64, bool, error) {
	for i := idx; i <= s.last; i++ {
		if s.hasExtra(i) {
			continue
		}
		offset, _, ok, err := s.locate(i)
		return i, offset, ok, err
	}
	return 0, 0, false, nil
}

// firstSegmentOffsetFrom returns the base offset of the first segment
// entry at or after idx, or the log end when there is none.
func (s *Store) firstSegmentOffsetFrom(idx uint64) (int64, error) {
	_, offset, ok, err := s.firstSegmentEntryFrom(idx)
	if err != nil {
		return 0, err
	}
	if !ok {
		return s.segs.NextOffset(), nil
	}
	return offset, nil
}

// Reset forgets every entry without touching the segment log: the next
// entry stored must have index next, and its batch goes at the log end.
// The FSM's snapshot restore calls it after replacing the log's contents,
// and a partition that predates replication calls it once so its batches
// stay below the Raft window.
func (s *Store) Reset(next uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publishFirst()
	if s.closed {
		return ErrClosed
	}
	if s.failed != nil {
		return s.failed
	}
	s.first, s.last, s.expect = 0, 0, next
	clear(s.extra)
	s.marks = s.marks[:0]
	s.cur.valid = false
	s.sinceMark = 0
	return s.check(s.rewrite())
}

// rewrite replaces the sidecar with one holding only the live state.
func (s *Store) rewrite() error {
	b := appendHeader(nil)
	switch {
	case s.first == 0:
		b = appendRecord(b, &record{kind: kindReset, index: s.expect})
	default:
		b = appendRecord(b, &record{kind: kindFirst, index: s.first})
		for _, m := range s.marks {
			b = appendRecord(b, &record{kind: kindMark, index: m.index, offset: m.offset})
		}
		idxs := make([]uint64, 0, len(s.extra))
		for i := range s.extra {
			idxs = append(idxs, i)
		}
		slices.Sort(idxs)
		for _, i := range idxs {
			e := s.extra[i]
			b = appendRecord(b, &record{kind: kindEntry, index: i, entry: e})
		}
	}
	tmp := s.path + ".tmp"
	f, err := s.fs.OpenFile(tmp, true)
	if err != nil {
		return fmt.Errorf("raftlog: create %s: %w", tmp, err)
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(b, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("raftlog: write %s: %w", tmp, err)
	}
	if err := s.fs.Rename(tmp, s.path); err != nil {
		_ = f.Close()
		return fmt.Errorf("raftlog: rename %s: %w", tmp, err)
	}
	if err := s.fs.SyncDir(filepath.Dir(s.path)); err != nil {
		_ = f.Close()
		return fmt.Errorf("raftlog: sync directory of %s: %w", s.path, err)
	}
	_ = s.file.Close()
	s.file, s.size = f, int64(len(b))
	return nil
}

// write appends b to the sidecar.
func (s *Store) write(b []byte) error {
	if _, err := s.file.WriteAt(b, s.size); err != nil {
		// Leave no partial record behind for the next write to follow.
		_ = s.file.Truncate(s.size)
		return fmt.Errorf("raftlog: write %s at %d: %w", s.path, s.size, err)
	}
	s.size += int64(len(b))
	return nil
}

func (s *Store) sync() error {
	if err := s.file.Sync(); err != nil {
		return fmt.Errorf("raftlog: sync %s: %w", s.path, err)
	}
	return nil
}

// Close closes the sidecar; the segment log is its owner's to close.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	return s.file.Close()
}
