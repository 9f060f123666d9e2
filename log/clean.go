package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// Compaction support: the cleaner (package partition, which decodes
// records) reads sealed segments with ReadSegment, writes their cleaned
// replacement with CreateCleanedSegment, and swaps it in with
// ReplaceSegments. The swap is crash-safe, as Kafka's LogCleaner:
//
//  1. B.log.cleaned, B.index.cleaned, B.timeindex.cleaned written, synced
//     (B: base offset of the first replaced segment)
//  2. *.cleaned renamed to *.swap, indexes first; directory synced.
//     B.log.swap existing is the commit point.
//  3. replaced segments other than B removed
//  4. *.swap renamed over B's files, .log last; directory synced
//
// Open discards every *.cleaned file and every *.swap index without its
// B.log.swap (a clean that did not commit), and completes a committed swap:
// it removes the segments based in (B, end of B.log.swap) and renames the
// swap files. A cleaned segment always ends where the segments it replaces
// ended (the cleaner keeps each group's last batch, emptied if need be), so
// that range is exactly the replaced segments.
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// ErrSegmentsChanged reports that the segments a clean read were removed or
// replaced meanwhile (retention, DeleteRecords, truncation); the clean is
// abandoned and the next one starts over.
var ErrSegmentsChanged = errors.New("log: segments changed while cleaning")

// SegmentReader reads the batches of one segment, oldest first, verifying
// each (VerifyBatch). It holds a reference on the segment's files, so it
// keeps reading after the segment is removed or replaced. Not safe for
// concurrent use; Close it.
type SegmentReader struct {
	base int64
	file *fileHandle
	sc   *batchScanner
}

// ReadSegment opens the segment based at base (as Segments lists it) for
// reading, from the snapshot current now. ErrSegmentsChanged when no
// segment has that base any more.
func (l *Log) ReadSegment(base int64) (*SegmentReader, error) {
	for {
		s := l.state.Load()
		if s.closed {
			return nil, ErrClosed
		}
		i := s.find(base)
		v := s.view(i)
		if v.base != base {
			return nil, fmt.Errorf("read segment %d: %w", base, ErrSegmentsChanged)
		}
		f, err := v.seg.openLog()
		if l.retry(err, s) {
			continue // removed or replaced: look in the new snapshot
		}
		if err != nil {
			return nil, fmt.Errorf("read segment %d: %w", base, err)
		}
		return &SegmentReader{base: base, file: f, sc: newBatchScanner(f.f, 0, v.size, true)}, nil
	}
}

// Next returns the next batch and its header; the bytes are valid until
// the next call. It returns io.EOF after the last batch, and an error
// wrapping ErrCorrupt or ErrShortBatch for a batch that fails VerifyBatch.
func (r *SegmentReader) Next() ([]byte, BatchHeader, error) {
	h, pos, err := r.sc.next()
	if errors.Is(err, io.EOF) {
		return nil, h, io.EOF
	}
	if err != nil {
		return nil, h, fmt.Errorf("read segment %d: %w", r.base, err)
	}
	off := pos - r.sc.bufPos
	return r.sc.buf[off : off+int64(h.Size())], h, nil
}

// Close releases the reader's buffer and segment reference.
func (r *SegmentReader) Close() {
	if r.sc != nil {
		r.sc.release()
		r.file.release()
		r.sc = nil
	}
}

// CleanedSegment is a segment being written by the cleaner under the
// .cleaned names, to replace sealed segments with ReplaceSegments. Not safe
// for concurrent use.
type CleanedSegment struct {
	l        *Log
	seg      *segment
	view     segmentView
	x        indexer
	finished bool
}

func cleanedPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, segmentName(base, suffix)+cleanedSuffix)
}

func swapPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, segmentName(base, suffix)+swapSuffix)
}

// CreateCleanedSegment creates the empty .cleaned files of a segment based
// at base (replacing leftovers). It takes no lock: the cleaner writes while
// appends and reads go on.
func (l *Log) CreateCleanedSegment(base int64) (*CleanedSegment, error) {
	// Pinned until swapped in under its final names: it is opened by the
	// .cleaned names, which its path does not give.
	seg := &segment{base: base, dir: l.dir, fs: l.fs, cache: l.files, created: l.now()}
	seg.refs.Store(1)
	err := seg.pinFiles(cleanedPath(l.dir, base, logSuffix), cleanedPath(l.dir, base, indexSuffix), cleanedPath(l.dir, base, timeIndexSuffix), true)
	if err == nil {
		if err = errors.Join(seg.log.Truncate(0), seg.index.Truncate(0), seg.timeIndex.Truncate(0)); err != nil {
			seg.release()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create cleaned segment %d: %w", base, err)
	}
	return &CleanedSegment{
		l:    l,
		seg:  seg,
		view: emptyView(seg),
		x:    indexer{interval: int64(l.cfg.Load().IndexIntervalBytes)},
	}, nil
}

// Append writes one whole batch at the end. Base offsets must increase
// (gaps are fine) and start at or above the segment's base.
func (c *CleanedSegment) Append(batch []byte) error {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return fmt.Errorf("cleaned segment %d: %w", c.view.base, err)
	}
	if h.Size() != len(batch) {
		return fmt.Errorf("cleaned segment %d: %w: batch of %d bytes, %d given", c.view.base, ErrShortBatch, h.Size(), len(batch))
	}
	if h.BaseOffset < c.view.next || h.LastOffsetDelta < 0 {
		return fmt.Errorf("cleaned segment %d: batch at offset %d after offset %d: %w", c.view.base, h.BaseOffset, c.view.next, ErrOffsetMismatch)
	}
	if h.NextOffset()-c.view.base > math.MaxUint32 || c.view.size+int64(len(batch)) > math.MaxUint32 {
		return fmt.Errorf("cleaned segment %d: batch at offset %d overflows the segment index: %w", c.view.base, h.BaseOffset, ErrCorrupt)
	}
	if _, err := c.seg.log.WriteAt(batch, c.view.size); err != nil {
		return fmt.Errorf("cleaned segment %d: %w", c.view.base, err)
	}
	c.x.add(&c.view, h, c.view.size)
	c.view.size += int64(len(batch))
	return nil
}

// Size returns the bytes written so far.
func (c *CleanedSegment) Size() int64 { return c.view.size }

// NextOffset returns the offset after the last batch written, or the base
// offset when none was.
func (c *CleanedSegment) NextOffset() int64 { return c.view.next }

// Finish writes the index files and syncs all three files. It takes no
// lock; call it before ReplaceSegments.
func (c *CleanedSegment) Finish() error {
	if err := writeIndexes(c.seg, c.view.index, c.view.times); err != nil {
		return fmt.Errorf("finish cleaned segment %d: %w", c.view.base, err)
	}
	if err := c.seg.log.Sync(); err != nil {
		return fmt.Errorf("finish cleaned segment %d: %w", c.view.base, err)
	}
	c.finished = true
	return nil
}

// Abort closes and removes the cleaned files.
func (c *CleanedSegment) Abort() error {
	if c.seg == nil {
		return nil
	}
	err := c.seg.release()
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		for _, p := range []string{cleanedPath(c.l.dir, c.view.base, suffix), swapPath(c.l.dir, c.view.base, suffix)} {
			if rerr := c.l.fs.Remove(p); rerr != nil && !isNotExist(rerr) {
				err = errors.Join(err, rerr)
			}
		}
	}
	c.seg = nil
	return err
}

// ReplaceSegments swaps the finished cleaned segment c in for the
// consecutive sealed segments based at bases (oldest first; bases[0] must
// be c's base, and c must end where the last of them ends), crash-safely
// (see the top of this file). Readers holding the old segments finish with
// them; later reads see c. ErrSegmentsChanged when the segments are no
// longer those (c is then aborted). A failure after the swap committed
// makes the log refuse further writes; Open completes the swap. Like
// Append, the caller serialises it with the other writes; it renames files
// and syncs the directory twice, nothing more.
func (l *Log) ReplaceSegments(c *CleanedSegment, bases []int64) (err error) {
	s := l.state.Load()
	switch {
	case s.closed:
		c.Abort()
		return ErrClosed
	case l.failed.Load() != nil:
		c.Abort()
		return l.failed.Load().err
	case !c.finished || len(bases) == 0 || bases[0] != c.view.base:
		c.Abort()
		return fmt.Errorf("replace segments %v with cleaned segment %d: not finished or not based at the first", bases, c.view.base)
	}
	i := slices.IndexFunc(s.sealed, func(v segmentView) bool { return v.base == bases[0] })
	if i < 0 || i+len(bases) > len(s.sealed) {
		c.Abort()
		return fmt.Errorf("replace segments from %d: %w", bases[0], ErrSegmentsChanged)
	}
	old := s.sealed[i : i+len(bases)]
	for k, v := range old {
		if v.base != bases[k] {
			c.Abort()
			return fmt.Errorf("replace segments from %d: %w", bases[0], ErrSegmentsChanged)
		}
	}
	if end := old[len(old)-1].next; c.view.next != end {
		c.Abort()
		return fmt.Errorf("replace segments [%d, %d) with a cleaned segment ending at %d: %w", bases[0], end, c.view.next, ErrOffsetMismatch)
	}
	base := c.view.base

	// Before anything is swapped, record that offsets up to the cleaned
	// segment's end may have gaps, so recovery accepts them there.
	if end := c.view.next; end > l.compactedEnd.Load() {
		if err := writeCheckpoint(l.fs, l.dir, compactedEndFile, end); err != nil {
			c.Abort()
			return fmt.Errorf("swap in cleaned segment %d: record compacted end %d: %w", base, end, err)
		}
		l.compactedEnd.Store(end)
	}

	// Commit: the .log.swap rename, made durable.
	err = errors.Join(
		l.fs.Rename(cleanedPath(l.dir, base, indexSuffix), swapPath(l.dir, base, indexSuffix)),
		l.fs.Rename(cleanedPath(l.dir, base, timeIndexSuffix), swapPath(l.dir, base, timeIndexSuffix)))
	if err == nil {
		err = l.fs.Rename(cleanedPath(l.dir, base, logSuffix), swapPath(l.dir, base, logSuffix))
	}
	if err != nil {
		c.Abort()
		return fmt.Errorf("swap in cleaned segment %d: %w", base, err)
	}
	defer func() {
		if err != nil {
			// Committed or maybe committed: only Open can finish it.
			err = fmt.Errorf("swap in cleaned segment %d: %w", base, err)
			l.failed.CompareAndSwap(nil, &failure{err})
		}
	}()
	if err := l.fs.SyncDir(l.dir); err != nil {
		return err
	}

	// Committed: publish the cleaned segment first (readers use its open
	// files until it is unpinned under its final names), then retire the
	// replaced ones, so that a reader that has not opened them yet moves
	// to the new state instead of opening B's name after the rename.
	sealed := make([]segmentView, 0, len(s.sealed)-len(old)+1)
	sealed = append(append(append(sealed, s.sealed[:i]...), c.view), s.sealed[i+len(old):]...)
	l.pendingMu.Lock()
	cur := l.state.Load()
	l.state.Store(&state{sealed: sealed, active: cur.active, appended: cur.appended, logStart: cur.logStart})
	// The cleaned segment is synced; the replaced ones need no sync.
	l.rolled = slices.DeleteFunc(l.rolled, func(seg *segment) bool {
		for _, v := range old {
			if v.seg == seg {
				seg.release()
				return true
			}
		}
		return false
	})
	l.pendingMu.Unlock()
	seg := c.seg
	c.seg = nil // owned by the log now
	var size int64
	for _, v := range old {
		size += v.size
		if rerr := v.seg.retire(); rerr != nil {
			l.logger.Warn("closing replaced segment failed", zap.Int64("base-offset", v.base), zap.Error(rerr))
		}
	}
	err = l.renameSwapped(base, old)
	for _, v := range old {
		if rerr := v.seg.release(); rerr != nil {
			l.logger.Warn("closing replaced segment failed", zap.Int64("base-offset", v.base), zap.Error(rerr))
		}
	}
	if err != nil {
		return err
	}
	// Under its final names now: the cleaned segment's .log may be
	// opened by name, so it joins the cache like any sealed segment.
	if uerr := seg.unpin(); uerr != nil {
		l.logger.Warn("closing cleaned segment's index files failed", zap.Int64("base-offset", base), zap.Error(uerr))
	}
	l.logger.Info("replaced segments with cleaned segment", zap.Int64("base-offset", base),
		zap.Int("replaced-segments", len(old)), zap.Int64("bytes-before", size), zap.Int64("bytes-after", c.view.size))
	return nil
}

// renameSwapped completes a committed swap at base: removes the replaced
// segments other than the first, renames the .swap files over the first's,
// and syncs the directory.
func (l *Log) renameSwapped(base int64, old []segmentView) error {
	for _, v := range old[1:] {
		if err := v.seg.remove(); err != nil {
			return err
		}
	}
	for _, suffix := range []string{indexSuffix, timeIndexSuffix, logSuffix} {
		if err := l.fs.Rename(swapPath(l.dir, base, suffix), filepath.Join(l.dir, segmentName(base, suffix))); err != nil {
			return err
		}
	}
	return l.fs.SyncDir(l.dir)
}

// recoverCleaned handles the files of an interrupted clean in the listing
// names (see the top of this file) and returns the listing afterwards.
func (l *Log) recoverCleaned(names []string) ([]string, error) {
	changed := false
	for _, name := range names {
		if !strings.HasSuffix(name, cleanedSuffix) {
			continue
		}
		if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !isNotExist(err) {
			return nil, fmt.Errorf("remove unfinished cleaned file %s: %w", name, err)
		}
		l.logger.Info("removed unfinished cleaned file", zap.String("file", name))
		changed = true
	}
	for _, name := range names {
		segName, ok := strings.CutSuffix(name, swapSuffix)
		if !ok {
			continue
		}
		if base, suffix, ok := parseSegmentName(segName); ok && suffix == logSuffix {
			if err := l.completeSwap(base, names); err != nil {
				return nil, fmt.Errorf("complete swap of cleaned segment %d: %w", base, err)
			}
			changed = true
		}
	}
	if !changed && !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, swapSuffix) }) {
		return names, nil
	}
	// What is left of swaps are indexes of swaps that never committed.
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if strings.HasSuffix(name, swapSuffix) {
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !isNotExist(err) {
				return nil, fmt.Errorf("remove uncommitted swap file %s: %w", name, err)
			}
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return nil, err
	}
	return l.fs.ReadDir(l.dir)
}

// completeSwap finishes the committed swap of B.log.swap (base B): removes
// the segments it replaced, those based in (B, its end), and renames the
// swap files over B's.
func (l *Log) completeSwap(base int64, names []string) error {
	f, err := l.fs.OpenFile(swapPath(l.dir, base, logSuffix), false)
	if err != nil {
		return err
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return err
	}
	end := base
	sc := newBatchScanner(f, 0, size, true)
	for {
		h, _, serr := sc.next()
		if serr != nil {
			if !errors.Is(serr, io.EOF) && !isBadData(serr) {
				err = serr
			} else if isBadData(serr) {
				l.logger.Error("committed cleaned segment is corrupt, recovery will truncate it", zap.Int64("base-offset", base), zap.Error(serr))
			}
			break
		}
		end = h.NextOffset()
	}
	sc.release()
	f.Close()
	if err != nil {
		return err
	}
	var removed int
	for _, name := range names {
		b, suffix, ok := parseSegmentName(name)
		if !ok || b <= base || b >= end {
			continue
		}
		if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !isNotExist(err) {
			return err
		}
		if suffix == logSuffix {
			removed++
		}
	}
	for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
		final := filepath.Join(l.dir, segmentName(base, suffix))
		if slices.Contains(names, segmentName(base, suffix)+swapSuffix) {
			err = l.fs.Rename(swapPath(l.dir, base, suffix), final)
		} else if err = l.fs.Remove(final); isNotExist(err) {
			// Renamed already, or gone: Open rebuilds a missing index.
			err = nil
		}
		if err != nil {
			return err
		}
	}
	if err := l.fs.Rename(swapPath(l.dir, base, logSuffix), filepath.Join(l.dir, segmentName(base, logSuffix))); err != nil {
		return err
	}
	l.logger.Warn("completed interrupted swap of a cleaned segment", zap.Int64("base-offset", base),
		zap.Int64("next-offset", end), zap.Int("removed-segments", removed))
	return l.fs.SyncDir(l.dir)
}

// CleanerCheckpoint returns what the cleaner last stored with
// SetCleanerCheckpoint: the first dirty offset (below it the log was
// cleaned) and the earliest delete horizon (ms) of a tombstone kept by the
// last clean, 0 for none. ok is false when nothing is stored. Safe for
// concurrent use.
func (l *Log) CleanerCheckpoint() (firstDirty, deleteHorizon int64, ok bool) {
	v, ok := readCheckpoint(l.fs, l.dir, cleanerCheckpointFile, 2)
	if !ok {
		return 0, 0, false
	}
	return v[0], v[1], true
}

// SetCleanerCheckpoint durably stores the cleaner's state (see
// CleanerCheckpoint). The cleaner calls it, one at a time; TruncateTo
// lowers the first dirty offset to the truncation point.
func (l *Log) SetCleanerCheckpoint(firstDirty, deleteHorizon int64) error {
	if err := writeCheckpoint(l.fs, l.dir, cleanerCheckpointFile, firstDirty, deleteHorizon); err != nil {
		return fmt.Errorf("write cleaner checkpoint %d: %w", firstDirty, err)
	}
	return nil
}
