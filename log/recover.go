package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Open opens or creates the log in dir, recovering after a crash: the
// newest segment(s) are scanned, a torn or corrupt tail is truncated, and a
// missing or inconsistent index is rebuilt. After a clean Close no scan is
// needed. A directory that does not exist is created. Files in dir that are
// not segment files are left alone. Open never serves a batch that fails
// VerifyBatch in the scanned region; after an unclean shutdown it syncs the
// recovered files, so SyncedOffset starts at NextOffset.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	l := &Log{
		dir:      dir,
		fs:       opts.FS,
		files:    opts.FileCache,
		logger:   opts.Logger,
		now:      opts.Now,
		flusher:  opts.Flusher,
		onSynced: opts.OnSynced,
	}
	if l.fs == nil {
		l.fs = OSFS{}
	}
	if l.files == nil {
		l.files = DefaultFileCache
	}
	if l.logger == nil {
		l.logger = zap.NewNop()
	}
	l.logger = l.logger.Named("log").With(zap.String("dir", dir))
	if l.now == nil {
		l.now = time.Now
	}
	l.cfg.Store(&cfg)
	began := time.Now()
	s, clean, err := l.recover()
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	l.state.Store(s)
	l.active = s.active.seg
	l.indexer = indexer{interval: int64(cfg.IndexIntervalBytes)}
	l.indexer.reset(&s.active)
	l.synced.Store(s.active.next)
	l.logger.Debug("opened log", zap.Bool("clean", clean), zap.Int("segments", s.count()),
		zap.Int64("start-offset", s.startOffset()), zap.Int64("next-offset", s.active.next),
		zap.Duration("took", time.Since(began)))
	return l, nil
}

// recover builds the initial state from the directory.
func (l *Log) recover() (_ *state, clean bool, err error) {
	names, err := l.fs.ReadDir(l.dir)
	if isNotExist(err) {
		// A new partition: its directory entry must survive power loss too.
		if err := l.fs.MkdirAll(l.dir); err != nil {
			return nil, false, err
		}
		if err := l.fs.SyncDir(filepath.Dir(l.dir)); err != nil {
			return nil, false, err
		}
		names, err = nil, nil
	}
	if err != nil {
		return nil, false, err
	}
	// An interrupted compaction: finish its swap or discard its files.
	if names, err = l.recoverCleaned(names); err != nil {
		return nil, false, err
	}
	var bases []int64
	logs := map[int64]bool{}
	var orphans []string
	for _, name := range names {
		base, suffix, ok := parseSegmentName(name)
		switch {
		case name == cleanMarker:
			clean = true
		case isCheckpointFile(name):
		case !ok:
			// The directory is shared with the partition layer
			// (producer.snapshot and its other checkpoints): files that
			// are not segments are not ours to judge.
			l.logger.Debug("ignoring file that is not a segment", zap.String("file", name))
		case suffix == logSuffix:
			bases = append(bases, base)
			logs[base] = true
		default:
			orphans = append(orphans, name)
		}
	}
	for _, name := range orphans {
		if base, _, _ := parseSegmentName(name); !logs[base] {
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !isNotExist(err) {
				return nil, false, fmt.Errorf("remove orphan index %s: %w", name, err)
			}
		}
	}
	slices.Sort(bases)
	recoveryPoint := readRecoveryPoint(l.fs, l.dir)
	l.compactedEnd.Store(readCompactedEnd(l.fs, l.dir))

	var views []segmentView
	closeAll := func() {
		for _, v := range views {
			v.seg.release()
		}
	}
	for i, base := range bases {
		newest := i == len(bases)-1
		seg, err := openSegment(l.fs, l.files, l.dir, base, false, l.now())
		if err != nil {
			closeAll()
			return nil, false, err
		}
		verifyAll := !clean && (newest || base >= recoveryPoint)
		v, cut, err := l.recoverSegment(seg, verifyAll)
		if err != nil {
			seg.release()
			closeAll()
			return nil, false, fmt.Errorf("recover segment %d: %w", base, err)
		}
		if n := len(views); n > 0 && views[n-1].next != base {
			l.logger.Error("segment does not follow the previous one, deleting it and later segments",
				zap.Int64("base-offset", base), zap.Int64("expected-base-offset", views[n-1].next))
			seg.release()
			if err := l.removeSegmentFiles(bases[i:]); err != nil {
				closeAll()
				return nil, false, err
			}
			break
		}
		if !clean && base >= recoveryPoint {
			// A process crash leaves data in the page cache only; make
			// what recovery kept durable so SyncedOffset can start at
			// NextOffset. Segments below the recovery point were synced
			// when they rolled; the newest is synced below.
			if err := seg.log.Sync(); err != nil {
				seg.release()
				closeAll()
				return nil, false, fmt.Errorf("sync segment %d: %w", base, err)
			}
		}
		if n := len(views); n > 0 {
			// A later segment follows: the previous one is sealed. Its
			// index files close and its .log joins the cache, so Open
			// keeps no more files open than the segments that follow.
			if err := views[n-1].seg.unpin(); err != nil {
				seg.release()
				closeAll()
				return nil, false, fmt.Errorf("close segment %d: %w", views[n-1].base, err)
			}
		}
		views = append(views, v)
		if cut && !newest {
			l.logger.Error("older segment ends in a torn or corrupt batch, deleting later segments",
				zap.Int64("base-offset", base), zap.Int64("next-offset", v.next), zap.Int("deleted-segments", len(bases)-i-1))
			if err := l.removeSegmentFiles(bases[i+1:]); err != nil {
				closeAll()
				return nil, false, err
			}
			break
		}
	}
	if len(views) == 0 {
		seg, err := l.createSegment(0, true)
		if err != nil {
			return nil, false, fmt.Errorf("create first segment: %w", err)
		}
		views = append(views, emptyView(seg))
	}
	logStart, err := l.recoverStartOffset(&views)
	if err != nil {
		closeAll()
		return nil, false, err
	}
	if active := views[len(views)-1]; !clean {
		if err := active.seg.log.Sync(); err != nil {
			closeAll()
			return nil, false, fmt.Errorf("sync segment %d: %w", active.base, err)
		}
	}
	// Everything below the newest segment is now verified or trusted, and
	// synced.
	if newest := views[len(views)-1].base; newest != recoveryPoint {
		if err := writeRecoveryPoint(l.fs, l.dir, newest); err != nil {
			closeAll()
			return nil, false, err
		}
		recoveryPoint = newest
	}
	l.recoveryPoint = recoveryPoint
	// The marker must be gone (durably) before the first append can make
	// the index files stale.
	if err := l.fs.Remove(filepath.Join(l.dir, cleanMarker)); err != nil && !isNotExist(err) {
		closeAll()
		return nil, false, err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		closeAll()
		return nil, false, err
	}
	n := len(views)
	return &state{sealed: views[: n-1 : n-1], active: views[n-1], logStart: logStart}, clean, nil
}

// removeSegmentFiles deletes the files of the segments at bases, newest
// first.
func (l *Log) removeSegmentFiles(bases []int64) error {
	for i := len(bases) - 1; i >= 0; i-- {
		for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			if err := l.fs.Remove(filepath.Join(l.dir, segmentName(bases[i], suffix))); err != nil && !isNotExist(err) {
				return fmt.Errorf("delete segment %d: %w", bases[i], err)
			}
		}
	}
	return l.fs.SyncDir(l.dir)
}

// recoverSegment builds the view of one segment. With verifyAll (after an
// unclean shutdown, for the newest segment and those at or above the
// recovery point) it verifies every batch and rebuilds the indexes;
// otherwise it loads and checks the index files and verifies only the
// batches after the last entry, falling back to verifying everything when
// the indexes fail their checks. At the first bad batch the .log is
// truncated; cut reports that.
func (l *Log) recoverSegment(seg *segment, verifyAll bool) (v segmentView, cut bool, err error) {
	size, err := seg.log.Size()
	if err != nil {
		return v, false, err
	}
	v = emptyView(seg)
	if !verifyAll {
		index, times, err := loadIndexes(seg, size)
		if err == nil {
			v.index, v.times = index, times
			from := int64(0)
			if n := len(index); n > 0 {
				from = int64(index[n-1].position)
				v.maxTimestamp = times[n-1].maxTimestamp
			}
			return l.scanSegment(v, from, size)
		}
		if !errors.Is(err, ErrCorruptIndex) {
			return v, false, err
		}
		l.logger.Warn("rebuilding index", zap.Int64("base-offset", seg.base), zap.Error(err))
	}
	return l.scanSegment(v, 0, size)
}

// scanSegment verifies the batches of v's segment from position from (an
// index entry, or 0) to size, adding index entries for them, truncates the
// .log at the first bad batch, and writes the new index entries out.
func (l *Log) scanSegment(v segmentView, from, size int64) (_ segmentView, cut bool, err error) {
	seg := v.seg
	keep := len(v.index)
	expect := seg.base
	if from > 0 {
		// The entry at from is re-added by the scan.
		keep--
		expect = seg.base + int64(v.index[keep].relativeOffset)
	} else {
		v.maxTimestamp = math.MinInt64
	}
	v.index, v.times = v.index[:keep:keep], v.times[:keep:keep]
	x := &indexer{interval: int64(l.cfg.Load().IndexIntervalBytes)}
	sc := newBatchScanner(seg.log, from, size, true)
	defer sc.release()
	var bad error
	for {
		h, pos, err := sc.next()
		if errors.Is(err, io.EOF) {
			break
		}
		// Compaction leaves gaps between batches, never overlaps, and only
		// in segments it replaced: elsewhere offsets are dense, which is
		// all that catches a corrupted base offset (the CRC skips it).
		if err == nil && h.BaseOffset < expect {
			err = fmt.Errorf("%w: batch at position %d has base offset %d, want at least %d", ErrCorrupt, pos, h.BaseOffset, expect)
		}
		if err == nil && h.BaseOffset > expect && seg.base >= l.compactedEnd.Load() {
			err = fmt.Errorf("%w: batch at position %d has base offset %d, want %d (segment %d was never compacted)", ErrCorrupt, pos, h.BaseOffset, expect, seg.base)
		}
		if err == nil && (h.NextOffset()-seg.base > math.MaxUint32 || pos > math.MaxUint32) {
			err = fmt.Errorf("%w: batch at position %d overflows the segment index", ErrCorrupt, pos)
		}
		if err != nil {
			if !isBadData(err) {
				return v, false, err
			}
			bad = err
			break
		}
		if pos == from && from > 0 {
			x.bytesSince = x.interval // the kept entry's batch
		}
		x.add(&v, h, pos)
		expect = h.NextOffset()
	}
	if bad != nil && from > 0 && sc.pos == from {
		// The indexed batch itself is bad, and its time index entry's max
		// timestamp counts it: truncate there and rebuild the segment
		// from the start.
		l.logger.Warn("truncating corrupt batch at the last index entry", zap.Int64("base-offset", seg.base),
			zap.Int64("position", from), zap.Int64("size", size), zap.Error(bad))
		if err := errors.Join(seg.log.Truncate(from), seg.log.Sync()); err != nil {
			return v, false, err
		}
		rebuilt, _, err := l.scanSegment(emptyView(seg), 0, from)
		return rebuilt, true, err
	}
	v.size = sc.pos
	if v.empty() {
		v.next = seg.base
	} else {
		v.next = expect
	}
	if bad != nil {
		l.logger.Warn("truncating torn or corrupt segment tail", zap.Int64("base-offset", seg.base),
			zap.Int64("position", sc.pos), zap.Int64("size", size), zap.Int64("next-offset", v.next), zap.Error(bad))
		if err := seg.log.Truncate(sc.pos); err != nil {
			return v, false, err
		}
		if err := seg.log.Sync(); err != nil {
			return v, false, err
		}
	}
	if err := writeIndexes(seg, v.index, v.times); err != nil {
		return v, false, err
	}
	return v, bad != nil, nil
}

// indexer adds batches to a segment view, placing an index entry every
// interval bytes; Append and recovery share it so both index alike.
type indexer struct {
	interval   int64
	bytesSince int64
}

// reset sets the bytes since the last entry of v, after Open or TruncateTo.
func (x *indexer) reset(v *segmentView) {
	x.bytesSince = v.size
	if n := len(v.index); n > 0 {
		x.bytesSince = v.size - int64(v.index[n-1].position)
	}
}

func (x *indexer) add(v *segmentView, h BatchHeader, pos int64) {
	v.maxTimestamp = max(v.maxTimestamp, h.MaxTimestamp)
	if x.bytesSince >= x.interval {
		rel := uint32(h.BaseOffset - v.base)
		v.index = append(v.index, indexEntry{relativeOffset: rel, position: uint32(pos)})
		v.times = append(v.times, timeEntry{maxTimestamp: v.maxTimestamp, relativeOffset: rel})
		x.bytesSince = 0
	}
	x.bytesSince += int64(h.Size())
	v.next = h.NextOffset()
}

// writeIndexes replaces the segment's index files with the entries and
// syncs them.
func writeIndexes(seg *segment, index []indexEntry, times []timeEntry) error {
	b := make([]byte, 0, len(index)*indexEntrySize)
	for _, e := range index {
		b = appendIndexEntry(b, e)
	}
	t := make([]byte, 0, len(times)*timeEntrySize)
	for _, e := range times {
		t = appendTimeEntry(t, e)
	}
	for _, w := range []struct {
		f File
		b []byte
	}{{seg.index, b}, {seg.timeIndex, t}} {
		if err := w.f.Truncate(int64(len(w.b))); err != nil {
			return fmt.Errorf("write index: %w", err)
		}
		if _, err := w.f.WriteAt(w.b, 0); err != nil {
			return fmt.Errorf("write index: %w", err)
		}
		// Appends sync index files only when their segment is sealed, so a
		// rebuilt index of a sealed segment must be made durable here
		// before a clean marker can vouch for it.
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("sync index: %w", err)
		}
	}
	return nil
}

// loadIndexes reads and checks a segment's index files against its .log of
// size bytes: well-formed entries, and the first and last offset entries
// naming a batch that starts there with that offset. Errors wrap
// ErrCorruptIndex unless they are I/O errors.
func loadIndexes(seg *segment, size int64) ([]indexEntry, []timeEntry, error) {
	ib, err := readAll(seg.index)
	if err != nil {
		return nil, nil, err
	}
	tb, err := readAll(seg.timeIndex)
	if err != nil {
		return nil, nil, err
	}
	index, err := decodeIndex(ib, size)
	if err != nil {
		return nil, nil, err
	}
	times, err := decodeTimeIndex(tb, index)
	if err != nil {
		return nil, nil, err
	}
	if len(index) == 0 {
		// Never indexed (a segment smaller than the interval) or lost:
		// the tail scan from 0 covers both.
		return index, times, nil
	}
	for _, i := range []int{0, len(index) - 1} {
		e := index[i]
		var hb [BatchHeaderSize]byte
		if n, _ := seg.log.ReadAt(hb[:], int64(e.position)); n < len(hb) {
			return nil, nil, fmt.Errorf("%w: entry %d points past the last batch header", ErrCorruptIndex, i)
		}
		h, err := ParseBatchHeader(hb[:])
		if err != nil || h.BaseOffset != seg.base+int64(e.relativeOffset) {
			return nil, nil, fmt.Errorf("%w: entry %d (offset %d) does not point at its batch", ErrCorruptIndex, i, seg.base+int64(e.relativeOffset))
		}
	}
	return index, times, nil
}

// readAll reads a whole (small) file.
func readAll(f File) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); n < len(b) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}
