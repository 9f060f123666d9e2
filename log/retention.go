package log

import (
	"fmt"
	"math"
	"slices"

	"go.uber.org/zap"
)

// SegmentInfo describes one segment, for retention decisions and metrics.
type SegmentInfo struct {
	// BaseOffset is the segment's first offset; NextOffset the offset after
	// its last batch (BaseOffset when empty): it holds [BaseOffset,
	// NextOffset).
	BaseOffset, NextOffset int64
	// Size is the segment's .log size in bytes.
	Size int64
	// MaxTimestamp is the largest batch MaxTimestamp in the segment (ms),
	// or -1 when it is empty.
	MaxTimestamp int64
	// Active marks the newest segment, the one being appended to.
	Active bool
}

// Segments returns a description of every segment, oldest first, from one
// snapshot. The slice is the caller's. Safe for concurrent use.
func (l *Log) Segments() []SegmentInfo {
	s := l.state.Load()
	if s.closed {
		return nil
	}
	out := make([]SegmentInfo, s.count())
	for i := range out {
		v := s.view(i)
		ts := v.maxTimestamp
		if ts == math.MinInt64 {
			ts = -1
		}
		out[i] = SegmentInfo{BaseOffset: v.base, NextOffset: v.next, Size: v.size, MaxTimestamp: ts, Active: i == s.count()-1}
	}
	return out
}

// RemoveSegmentsBefore deletes, oldest first, every segment other than the
// active one that holds nothing at or above offset (the next segment's
// base offset is <= offset, Kafka's rule), and returns how many it removed.
// StartOffset becomes the base offset of the first remaining segment, or
// the stored log start offset if that is higher. It implements retention
// (retention.ms, retention.bytes) and DeleteRecords: the caller chooses
// offset from Segments. Readers still using a removed segment finish with
// it. Like Append, the caller serialises it with the other writes.
func (l *Log) RemoveSegmentsBefore(offset int64) (int, error) {
	s := l.state.Load()
	if s.closed {
		return 0, ErrClosed
	}
	n := 0
	for n < len(s.sealed) && s.view(n+1).base <= offset {
		n++
	}
	if n == 0 {
		return 0, nil
	}
	removed := s.sealed[:n]
	l.pendingMu.Lock()
	l.state.Store(&state{sealed: slices.Clone(s.sealed[n:]), active: s.active, appended: s.appended, logStart: s.logStart})
	// Removed segments need no sync any more.
	l.rolled = slices.DeleteFunc(l.rolled, func(seg *segment) bool {
		if seg.base < removed[n-1].next {
			seg.release()
			return true
		}
		return false
	})
	l.pendingMu.Unlock()
	// Oldest first, so a crash part way leaves a contiguous suffix.
	for _, v := range removed {
		if err := v.seg.remove(); err != nil {
			return 0, fmt.Errorf("remove segment %d: %w", v.base, err)
		}
		if err := v.seg.release(); err != nil {
			l.logger.Warn("closing removed segment failed", zap.Int64("base-offset", v.base), zap.Error(err))
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return n, fmt.Errorf("remove segments below %d: %w", offset, err)
	}
	l.logger.Info("removed segments", zap.Int("segments", n), zap.Int64("start-offset", removed[n-1].next))
	return n, nil
}
