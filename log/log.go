package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

var (
	// ErrOffsetOutOfRange reports a read below the log start offset or above
	// the log end offset.
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrOffsetMismatch reports an Append whose first batch's base offset is
	// not the log end offset, or whose batches are not contiguous.
	ErrOffsetMismatch = errors.New("log: batch base offset is not the log end offset")
	// ErrClosed reports use of a closed Log or Flusher.
	ErrClosed = errors.New("log: closed")
	// ErrNotBatchBoundary reports a TruncateTo offset that is not the base
	// offset of a stored batch.
	ErrNotBatchBoundary = errors.New("log: offset is not a batch boundary")
)

// state is an immutable snapshot of the log's segments, published by the
// writer through Log.state and read without locks.
type state struct {
	// sealed are the segments before the active one, oldest first. The
	// slice is shared between snapshots and never written: a roll or
	// truncation builds a new one.
	sealed []segmentView
	// active is the segment being appended to.
	active segmentView
	// appended counts bytes appended since Open (for flush statistics).
	appended int64
	// logStart is the log start offset when it lies above the first
	// segment's base (DeleteRecords moved it inside a segment); 0
	// otherwise. See startOffset.
	logStart int64
	closed   bool
}

func (s *state) count() int { return len(s.sealed) + 1 }

func (s *state) view(i int) *segmentView {
	if i < len(s.sealed) {
		return &s.sealed[i]
	}
	return &s.active
}

// startOffset is the log start offset: the first segment's base, or the
// stored log start offset when that lies above it.
func (s *state) startOffset() int64 {
	if len(s.sealed) > 0 {
		return max(s.sealed[0].base, s.logStart)
	}
	return max(s.active.base, s.logStart)
}

// find returns the index of the segment that holds offset: the last one
// whose base is <= offset (0 when offset is below every base).
func (s *state) find(offset int64) int {
	i := sort.Search(s.count(), func(i int) bool { return s.view(i).base > offset }) - 1
	return max(i, 0)
}

// failure wraps a sticky error so it can sit in an atomic.Pointer.
type failure struct{ err error }

// Log is one partition's segmented, append-only log of record batches.
// One goroutine appends (the caller serialises Append, TruncateTo, Close
// and Delete); any number read concurrently without blocking the writer.
type Log struct {
	dir string
	// cfg is the current config; SetConfig replaces it. The writer reads
	// it to roll, the cleaner to index cleaned segments.
	cfg      atomic.Pointer[Config]
	fs       FS
	files    *FileCache
	logger   *zap.Logger
	now      func() time.Time
	flusher  *Flusher
	onSynced func(int64)

	// state is the current snapshot; the writer replaces it, readers load
	// it. Readers that touch a segment's files hold a segment reference.
	state atomic.Pointer[state]

	// Writer-only fields (no lock: the caller serialises writers).
	active      *segment // the segment of state.active
	indexer     indexer  // places the active segment's index entries
	indexFailed bool     // an index write failed: Close must not mark the log clean
	scratch     []byte   // encoding buffer for index entries

	// syncMu serialises syncs of this log (flusher round, Sync, Close) with
	// TruncateTo. Append never takes it. Lock order: syncMu, then
	// pendingMu; a flusher round may hold the syncMu of many logs.
	syncMu sync.Mutex
	// syncedBytes is state.appended at the last completed sync (syncMu).
	syncedBytes int64
	// compactedEnd is the stored compacted end (see checkpoint.go): only
	// segments based below it may have offset gaps.
	compactedEnd atomic.Int64
	// recoveryPoint is the stored recovery point (syncMu; see checkpoint.go).
	recoveryPoint int64

	// pendingMu guards rolled, and makes a roll (which adds to rolled and
	// publishes a state) atomic for prepareSync.
	pendingMu sync.Mutex
	// rolled are sealed segments not yet synced, each holding a reference.
	rolled []*segment
	// dirPending is set when a roll created files whose directory entries
	// the next sync must make durable.
	dirPending bool

	// synced is the offset below which every batch is on stable storage.
	synced atomic.Int64
	// failed is set once a sync fails: the page cache may have dropped the
	// data, so the log refuses further appends and syncs (fsyncgate).
	failed atomic.Pointer[failure]
}

// StartOffset returns the log start offset: the first offset still stored.
func (l *Log) StartOffset() int64 { return l.state.Load().startOffset() }

// NextOffset returns the log end offset: the offset the next appended batch
// gets.
func (l *Log) NextOffset() int64 { return l.state.Load().active.next }

// SyncedOffset returns the offset below which everything is on stable
// storage.
func (l *Log) SyncedOffset() int64 { return l.synced.Load() }

// Dir returns the directory holding the log's files.
func (l *Log) Dir() string { return l.dir }

// Append writes one or more whole, verified batches (concatenated) at the end
// of the log. The first batch's base offset must equal NextOffset and the
// batches must be contiguous (ErrOffsetMismatch otherwise). Append returns
// once the bytes are written to the OS; durability follows when the Flusher
// syncs (OnSynced reports it). It may roll a new segment first, by size or
// age. b is not retained. Bytes that do not parse as batch headers are an
// error wrapping ErrCorrupt or ErrShortBatch; CRCs are not checked again.
func (l *Log) Append(b []byte) error { return l.append(b, false) }

// AppendCompacted is Append for batches copied from a compacted log (a
// replica catching up from its leader's segments): the first batch's base
// offset may lie above NextOffset and batches may have gaps between them,
// never overlaps. Before writing, it raises the stored compacted end past
// the batches, durably, so that recovery accepts the gaps.
func (l *Log) AppendCompacted(b []byte) error { return l.append(b, true) }

func (l *Log) append(b []byte, gaps bool) error {
	s := l.state.Load()
	if s.closed {
		return ErrClosed
	}
	if f := l.failed.Load(); f != nil {
		return f.err
	}
	if len(b) == 0 {
		return nil
	}
	next, err := checkAppend(b, s.active.next, gaps)
	if err != nil {
		return err
	}
	if gaps && next > l.compactedEnd.Load() {
		if err := writeCheckpoint(l.fs, l.dir, compactedEndFile, next); err != nil {
			return fmt.Errorf("append compacted batches up to %d: record compacted end: %w", next, err)
		}
		l.compactedEnd.Store(next)
	}
	if int64(len(b)) > math.MaxUint32 {
		return fmt.Errorf("append %d bytes at offset %d: %w: larger than a segment can index", len(b), s.active.next, ErrCorrupt)
	}
	if reason := l.rollReason(&s.active, int64(len(b)), next); reason != "" {
		if s, err = l.roll(s, reason); err != nil {
			return err
		}
	}
	v := s.active // copy; its slices are only appended to
	if _, err := l.active.log.WriteAt(b, v.size); err != nil {
		// Leave no partial batch behind for the next append to follow.
		if terr := l.active.log.Truncate(v.size); terr != nil {
			err = errors.Join(err, terr)
		}
		return fmt.Errorf("append at offset %d to segment %d: %w", v.next, v.base, err)
	}
	firstEntry := len(v.index)
	for pos := 0; pos < len(b); {
		h, _ := ParseBatchHeader(b[pos:]) // checked by checkAppend
		l.indexer.add(&v, h, v.size+int64(pos))
		pos += h.Size()
	}
	v.size += int64(len(b))
	l.writeIndexEntries(&v, firstEntry)
	l.state.Store(&state{sealed: s.sealed, active: v, appended: s.appended + int64(len(b)), logStart: s.logStart})
	if l.flusher != nil {
		l.flusher.markDirty(l)
	}
	return nil
}

// checkAppend walks the batch headers in b and returns the offset after the
// last batch, checking that they are whole and contiguous from next (with
// gaps, that they only move forward from next).
func checkAppend(b []byte, next int64, gaps bool) (int64, error) {
	for pos := 0; pos < len(b); {
		h, err := ParseBatchHeader(b[pos:])
		if err != nil {
			return 0, fmt.Errorf("append at offset %d: %w", next, err)
		}
		if h.Size() > len(b)-pos {
			return 0, fmt.Errorf("append at offset %d: %w: batch of %d bytes, %d given", next, ErrShortBatch, h.Size(), len(b)-pos)
		}
		if h.LastOffsetDelta < 0 {
			return 0, fmt.Errorf("append at offset %d: %w: negative lastOffsetDelta %d", next, ErrCorrupt, h.LastOffsetDelta)
		}
		if h.BaseOffset != next && (!gaps || h.BaseOffset < next) {
			return 0, fmt.Errorf("append batch with base offset %d at log end offset %d: %w", h.BaseOffset, next, ErrOffsetMismatch)
		}
		next = h.NextOffset()
		pos += h.Size()
	}
	return next, nil
}

// rollReason says why the active segment must be rolled before appending n
// bytes that end at offset next, or "" when it need not.
func (l *Log) rollReason(v *segmentView, n, next int64) string {
	switch {
	case v.empty():
		return ""
	case v.size+n > l.cfg.Load().SegmentBytes:
		return "size"
	case v.size+n > math.MaxUint32:
		return "position-overflow"
	case next-v.base > math.MaxUint32:
		return "offset-overflow"
	case l.now().Sub(l.active.created) >= l.cfg.Load().SegmentAge:
		return "age"
	}
	return ""
}

// writeIndexEntries appends v's index entries from first on to the active
// segment's index files. A failure is logged, not returned: the batches are
// written and the index is derived data that Open rebuilds.
func (l *Log) writeIndexEntries(v *segmentView, first int) {
	if first == len(v.index) {
		return
	}
	b := l.scratch[:0]
	for _, e := range v.index[first:] {
		b = appendIndexEntry(b, e)
	}
	_, err := l.active.index.WriteAt(b, int64(first)*indexEntrySize)
	b = b[:0]
	for _, e := range v.times[first:] {
		b = appendTimeEntry(b, e)
	}
	if err == nil {
		_, err = l.active.timeIndex.WriteAt(b, int64(first)*timeEntrySize)
	}
	l.scratch = b
	if err != nil && !l.indexFailed {
		l.indexFailed = true
		l.logger.Warn("index write failed, index will be rebuilt on open", zap.Int64("base-offset", v.base), zap.Error(err))
	}
}

// roll seals the active segment and creates a new one at the log end
// offset, returning the published state.
func (l *Log) roll(s *state, reason string) (*state, error) {
	base := s.active.next
	seg, err := l.createSegment(base, false)
	if err != nil {
		return s, fmt.Errorf("roll segment at offset %d: %w", base, err)
	}
	old := s.active
	l.pendingMu.Lock()
	// The next sync makes the new directory entry durable, off the
	// append path, before it vouches for any offset in the new segment.
	l.dirPending = true
	old.seg.acquire() // the log holds a reference, so this succeeds
	l.rolled = append(l.rolled, old.seg)
	ns := &state{sealed: append(slices.Clip(s.sealed), old), active: emptyView(seg), appended: s.appended, logStart: s.logStart}
	l.state.Store(ns)
	l.pendingMu.Unlock()
	l.active = seg
	l.indexer.bytesSince = 0
	l.indexer.interval = int64(l.cfg.Load().IndexIntervalBytes)
	l.logger.Info("rolled segment", zap.Int64("base-offset", base), zap.String("reason", reason),
		zap.Int64("previous-base-offset", old.base), zap.Int64("previous-size", old.size))
	return ns, nil
}

// createSegment creates empty files for a segment at base and, if syncDir
// is set, makes their directory entries durable.
func (l *Log) createSegment(base int64, syncDir bool) (*segment, error) {
	seg, err := openSegment(l.fs, l.files, l.dir, base, true, l.now())
	if err != nil {
		return nil, err
	}
	// A leftover file of that name (a crash mid-truncation) must not leak
	// old bytes into the new segment.
	err = errors.Join(seg.log.Truncate(0), seg.index.Truncate(0), seg.timeIndex.Truncate(0))
	if err == nil && syncDir {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		seg.release()
		return nil, err
	}
	return seg, nil
}

// TruncateTo removes every batch at or after offset (which must fall on a
// batch boundary or equal NextOffset); replication uses it. Segments wholly
// above are deleted. It waits for a sync in progress, and makes the
// truncation durable before returning. It returns ErrOffsetOutOfRange for an
// offset outside [StartOffset, NextOffset] and ErrNotBatchBoundary for one
// inside a batch. SyncedOffset drops to offset if it was above.
func (l *Log) TruncateTo(offset int64) error {
	s := l.state.Load()
	if s.closed {
		return ErrClosed
	}
	start, next := s.startOffset(), s.active.next
	if offset == next {
		return nil
	}
	if offset < start || offset > next {
		return fmt.Errorf("truncate to %d, log holds [%d, %d): %w", offset, start, next, ErrOffsetOutOfRange)
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()

	i := s.find(offset)
	v := *s.view(i)
	pos, err := findBatchStart(&v, offset)
	if err != nil {
		return fmt.Errorf("truncate to %d in segment %d: %w", offset, v.base, err)
	}
	nv, err := truncatedView(v, pos, offset)
	if err != nil {
		return fmt.Errorf("truncate to %d in segment %d: %w", offset, v.base, err)
	}
	if i < len(s.sealed) {
		// The segment becomes the active one: its files are written again.
		if err := v.seg.repin(); err != nil {
			return fmt.Errorf("truncate to %d in segment %d: %w", offset, v.base, err)
		}
	}
	var removed []segmentView
	for j := i + 1; j < s.count(); j++ {
		removed = append(removed, *s.view(j))
	}
	l.pendingMu.Lock()
	l.state.Store(&state{sealed: slices.Clone(s.sealed[:i]), active: nv, appended: s.appended, logStart: s.logStart})
	l.rolled = slices.DeleteFunc(l.rolled, func(seg *segment) bool {
		if seg.base >= v.base {
			seg.release()
			return true
		}
		return false
	})
	l.pendingMu.Unlock()
	l.active = v.seg
	l.indexer.reset(&nv)
	if l.synced.Load() > offset {
		l.synced.Store(offset)
	}

	var errs []error
	if l.recoveryPoint > v.base {
		// Segments rolled after this truncation must not count as synced.
		errs = append(errs, writeRecoveryPoint(l.fs, l.dir, v.base))
		l.recoveryPoint = v.base
	}
	if firstDirty, horizon, ok := l.CleanerCheckpoint(); ok && firstDirty > offset {
		// What is appended after the truncation point is dirty again.
		errs = append(errs, l.SetCleanerCheckpoint(offset, horizon))
	}
	// Newest first, so a crash part way leaves a prefix of the log.
	for j := len(removed) - 1; j >= 0; j-- {
		errs = append(errs, removed[j].seg.remove(), removed[j].seg.release())
	}
	seg := v.seg
	errs = append(errs,
		seg.log.Truncate(pos),
		seg.index.Truncate(int64(len(nv.index))*indexEntrySize),
		seg.timeIndex.Truncate(int64(len(nv.times))*timeEntrySize),
		seg.log.Sync(), seg.index.Sync(), seg.timeIndex.Sync(),
		l.fs.SyncDir(l.dir))
	if err := errors.Join(errs...); err != nil {
		// The in-memory state is already truncated; a crash may bring the
		// removed batches back, which Open then serves. Fail loudly.
		err = fmt.Errorf("truncate to %d in segment %d: %w", offset, v.base, err)
		l.failed.CompareAndSwap(nil, &failure{err})
		return err
	}
	l.logger.Info("truncated log", zap.Int64("offset", offset), zap.Int64("previous-next-offset", next),
		zap.Int("removed-segments", len(removed)))
	return nil
}

// findBatchStart returns the position in v of the batch whose base offset
// is offset, or ErrNotBatchBoundary.
func findBatchStart(v *segmentView, offset int64) (int64, error) {
	h, err := v.seg.openLog()
	if err != nil {
		return 0, err
	}
	defer h.release()
	from, _ := lookupIndex(v.index, uint32(offset-v.base))
	sc := newBatchScanner(h.f, from, v.size, false)
	defer sc.release()
	for {
		h, pos, err := sc.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return 0, err
		}
		if h.BaseOffset == offset {
			return pos, nil
		}
		if h.BaseOffset > offset {
			break
		}
	}
	return 0, fmt.Errorf("%w: no batch starts at %d", ErrNotBatchBoundary, offset)
}

// truncatedView returns v cut at pos (the batch at offset): index entries at
// or past pos dropped (into fresh slices, since readers may hold the old),
// max timestamp recomputed.
func truncatedView(v segmentView, pos, offset int64) (segmentView, error) {
	n := sort.Search(len(v.index), func(i int) bool { return int64(v.index[i].position) >= pos })
	v.index = slices.Clone(v.index[:n])
	v.times = slices.Clone(v.times[:n])
	v.size, v.next = pos, offset
	v.maxTimestamp = math.MinInt64
	from := int64(0)
	if n > 0 {
		v.maxTimestamp = v.times[n-1].maxTimestamp
		from = int64(v.index[n-1].position)
	}
	f, err := v.seg.openLog()
	if err != nil {
		return v, err
	}
	defer f.release()
	sc := newBatchScanner(f.f, from, pos, false)
	defer sc.release()
	for {
		h, _, err := sc.next()
		if errors.Is(err, io.EOF) {
			return v, nil
		}
		if err != nil {
			return v, err
		}
		v.maxTimestamp = max(v.maxTimestamp, h.MaxTimestamp)
	}
}

// Close syncs, closes every file and marks the log cleanly shut down, so
// the next Open needs no recovery scan. Readers still running finish with
// the files they hold; later calls return ErrClosed.
func (l *Log) Close() error {
	if l.state.Load().closed {
		return ErrClosed
	}
	return l.close(true)
}

// Delete closes the log (without syncing) and removes its directory. It may
// follow Close.
func (l *Log) Delete() error {
	var err error
	if !l.state.Load().closed {
		err = l.close(false)
	}
	if rerr := l.fs.RemoveAll(l.dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("delete log %s: %w", l.dir, rerr))
	}
	if err == nil {
		l.logger.Info("deleted log")
	}
	return err
}

// close ends the log; final syncs everything and writes the clean marker.
func (l *Log) close(final bool) error {
	if l.flusher != nil {
		l.flusher.forget(l)
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	var err error
	if final {
		if job, ok := l.prepareSync(true); ok {
			_, serr := job.run()
			err = l.finishSync(job, serr)
		}
	}
	l.pendingMu.Lock()
	s := l.state.Load()
	l.state.Store(&state{closed: true, sealed: nil, active: segmentView{base: s.active.next, next: s.active.next}, logStart: s.logStart})
	for _, seg := range l.rolled {
		seg.release()
	}
	l.rolled = nil
	l.pendingMu.Unlock()
	for i := range s.count() {
		if rerr := s.view(i).seg.release(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err == nil && final && !l.indexFailed && l.failed.Load() == nil {
		err = l.writeCleanMarker()
	}
	if err != nil {
		return fmt.Errorf("close log %s: %w", l.dir, err)
	}
	l.logger.Debug("closed log", zap.Int64("next-offset", s.active.next))
	return nil
}

func (l *Log) writeCleanMarker() error {
	f, err := l.fs.OpenFile(filepath.Join(l.dir, cleanMarker), true)
	if err != nil {
		return err
	}
	err = errors.Join(f.Sync(), f.Close())
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	return err
}
