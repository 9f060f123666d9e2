package partition

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// RetentionResult says what EnforceRetention removed.
type RetentionResult struct {
	SegmentsDeleted int
	BytesDeleted    int64
	// LogStartOffset is the log start offset afterwards.
	LogStartOffset int64
}

// EnforceRetention deletes whole segments that retention no longer keeps,
// oldest first, when the cleanup policy includes delete: segments whose
// newest timestamp is older than now minus RetentionTime, and oldest
// segments while the partition is above RetentionBytes. It never deletes
// the active segment nor data at or above the last stable offset (so an
// open transaction's first batch stays; the LSO is at most the high
// watermark). The log start
// offset moves to the first kept offset. Removed segments are logged.
//
// As Kafka's UnifiedLog.deleteOldSegments: a segment goes by time when its
// largest timestamp (of any batch, -1 when it has none) is below now -
// RetentionTime (RetentionTime < 0 keeps forever), and by size while the
// log's total size minus the segment's is still at least RetentionBytes
// (RetentionBytes < 0 is unbounded). Deletion stops at the first segment
// that stays, so what remains is contiguous. Whatever the policy, segments
// wholly below the log start offset (left by a crash during
// DeleteRecordsBefore) are deleted too. It waits for an append in
// progress; after Close it returns ErrClosed.
func (r *Replica) EnforceRetention(now time.Time) (RetentionResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return RetentionResult{}, ErrClosed
	}
	cfg := &r.cfg
	segs := r.log.Segments()
	hwm, start := r.cleanBound(), r.log.StartOffset()
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	n := 0
	reasons := make([]string, 0, 4)
	// deletable reports whether segment n may go at all: never the active
	// one, never one holding data at or above the LSO (cleanBound).
	deletable := func(n int) bool { return n < len(segs)-1 && segs[n+1].BaseOffset <= hwm }
	for ; deletable(n) && segs[n+1].BaseOffset <= start; n++ {
		reasons = append(reasons, "log-start-offset")
		total -= segs[n].Size
	}
	if cfg.CleanupPolicy&CleanupDelete != 0 {
		if cfg.RetentionTime >= 0 {
			limit := now.UnixMilli() - cfg.RetentionTime.Milliseconds()
			for ; deletable(n) && segs[n].MaxTimestamp < limit; n++ {
				reasons = append(reasons, "retention-time")
				total -= segs[n].Size
			}
		}
		if cfg.RetentionBytes >= 0 {
			for ; deletable(n) && total-segs[n].Size >= cfg.RetentionBytes; n++ {
				reasons = append(reasons, "retention-bytes")
				total -= segs[n].Size
			}
		}
	}
	res := RetentionResult{LogStartOffset: start}
	if n == 0 {
		return res, nil
	}
	removed, err := r.removeSegments(segs, n, reasons)
	r.txns.trimAborted(r.log.StartOffset())
	res.SegmentsDeleted = removed
	for _, s := range segs[:removed] {
		res.BytesDeleted += s.Size
	}
	res.LogStartOffset = r.log.StartOffset()
	if err != nil {
		return res, fmt.Errorf("partition: retention of %s-%d: %w", r.topic, r.partition, err)
	}
	return res, nil
}

// removeSegments deletes segs[:n] (oldest, sealed) from the log, logging
// each with its reason, and counts them in Stats. It returns how many the
// log removed. Called with r.mu held.
func (r *Replica) removeSegments(segs []log.SegmentInfo, n int, reasons []string) (int, error) {
	for i, s := range segs[:n] {
		r.logger.Info("deleting segment", zap.Int64("base-offset", s.BaseOffset), zap.Int64("next-offset", s.NextOffset),
			zap.Int64("bytes", s.Size), zap.Int64("max-timestamp", s.MaxTimestamp), zap.String("reason", reasons[i]))
	}
	removed, err := r.log.RemoveSegmentsBefore(segs[n].BaseOffset)
	var bytes int64
	for _, s := range segs[:removed] {
		bytes += s.Size
	}
	r.cleanup.segmentsDeleted.Add(int64(removed))
	r.cleanup.bytesDeleted.Add(bytes)
	return removed, err
}
