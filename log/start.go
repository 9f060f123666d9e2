package log

import (
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// AdvanceStartOffset moves the log start offset up to offset (DeleteRecords)
// and removes the sealed segments wholly below it. The offset may lie
// inside a segment, even inside a batch: it is stored durably in the
// .log-start-offset checkpoint before the state changes, so Read refuses
// offsets below it from then on, across restarts and crashes. An offset at
// or below StartOffset changes nothing; one above NextOffset is
// ErrOffsetOutOfRange. Like Append, the caller serialises it with the other
// writes.
func (l *Log) AdvanceStartOffset(offset int64) error {
	s := l.state.Load()
	if s.closed {
		return ErrClosed
	}
	if f := l.failed.Load(); f != nil {
		return f.err
	}
	if offset > s.active.next {
		return fmt.Errorf("advance log start offset to %d, log holds [%d, %d): %w", offset, s.startOffset(), s.active.next, ErrOffsetOutOfRange)
	}
	if offset <= s.startOffset() {
		return nil
	}
	if err := writeCheckpoint(l.fs, l.dir, logStartFile, offset); err != nil {
		return fmt.Errorf("advance log start offset to %d: %w", offset, err)
	}
	l.pendingMu.Lock()
	ns := *l.state.Load()
	ns.logStart = offset
	l.state.Store(&ns)
	l.pendingMu.Unlock()
	l.logger.Info("advanced log start offset", zap.Int64("start-offset", offset))
	if _, err := l.RemoveSegmentsBefore(offset); err != nil {
		return fmt.Errorf("advance log start offset to %d: %w", offset, err)
	}
	return nil
}

// recoverStartOffset returns the stored log start offset for the recovered
// segments in views, or 0 when the first segment's base is at or above it.
// When it lies above the recovered log end (data lost with the page cache
// after the checkpoint was synced), every segment is deleted and the log
// restarts empty at it, as Kafka's truncateFullyAndStartAt.
func (l *Log) recoverStartOffset(views *[]segmentView) (int64, error) {
	v, ok := readCheckpoint(l.fs, l.dir, logStartFile, 1)
	vs := *views
	if !ok || v[0] <= vs[0].base {
		return 0, nil
	}
	start, next := v[0], vs[len(vs)-1].next
	if start <= next {
		return start, nil
	}
	l.logger.Warn("log start offset above the recovered log end, restarting the log empty at it",
		zap.Int64("start-offset", start), zap.Int64("next-offset", next))
	// Oldest first: a crash part way leaves a suffix, and the next Open
	// comes here again.
	for len(vs) > 0 {
		if err := vs[0].seg.remove(); err != nil {
			return 0, fmt.Errorf("delete segment %d below the log start offset %d: %w", vs[0].base, start, err)
		}
		vs[0].seg.release()
		vs = vs[1:]
		*views = vs
	}
	seg, err := l.createSegment(start, true)
	if err != nil {
		return 0, fmt.Errorf("create segment at the log start offset %d: %w", start, err)
	}
	*views = []segmentView{emptyView(seg)}
	return 0, nil
}

// RestartAt empties the log and restarts it at offset, above NextOffset,
// as Kafka's truncateFullyAndStartAt: a replica catching up whose leader's
// retention deleted every batch it lacks continues from the leader's log
// start. The log start checkpoint is stored first, so a crash part way
// leaves segments below it, which Open deletes (recoverStartOffset); then
// the new segment is created, published, and the old ones removed. Durable
// on return. An offset at or below NextOffset is ErrOffsetOutOfRange. Like
// Append, the caller serialises it with the other writes.
func (l *Log) RestartAt(offset int64) error {
	s := l.state.Load()
	if s.closed {
		return ErrClosed
	}
	if f := l.failed.Load(); f != nil {
		return f.err
	}
	if offset <= s.active.next {
		return fmt.Errorf("restart the log at %d, it holds [%d, %d): %w", offset, s.startOffset(), s.active.next, ErrOffsetOutOfRange)
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := writeCheckpoint(l.fs, l.dir, logStartFile, offset); err != nil {
		return fmt.Errorf("restart the log at %d: %w", offset, err)
	}
	seg, err := l.createSegment(offset, true)
	if err != nil {
		return fmt.Errorf("restart the log at %d: %w", offset, err)
	}
	ns := &state{active: emptyView(seg), appended: s.appended}
	l.pendingMu.Lock()
	l.state.Store(ns)
	for _, r := range l.rolled {
		r.release()
	}
	l.rolled = nil
	l.dirPending = false
	l.pendingMu.Unlock()
	l.active = seg
	l.indexer.reset(&ns.active)
	l.synced.Store(offset)

	errs := []error{writeRecoveryPoint(l.fs, l.dir, offset)}
	l.recoveryPoint = offset
	if _, horizon, ok := l.CleanerCheckpoint(); ok {
		errs = append(errs, l.SetCleanerCheckpoint(offset, horizon))
	}
	// Oldest first: a crash part way leaves a suffix below the start.
	for i := range s.count() {
		v := s.view(i)
		errs = append(errs, v.seg.remove(), v.seg.release())
	}
	errs = append(errs, l.fs.SyncDir(l.dir))
	if err := errors.Join(errs...); err != nil {
		err = fmt.Errorf("restart the log at %d: %w", offset, err)
		l.failed.CompareAndSwap(nil, &failure{err})
		return err
	}
	l.logger.Info("restarted the log empty", zap.Int64("start-offset", offset), zap.Int64("previous-next-offset", s.active.next))
	return nil
}
