package partition

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// DeleteRecordsBefore moves the log start offset up to offset (DeleteRecords;
// -1 means the high watermark), durably, and deletes segments wholly below
// it. An offset above the high watermark is kerr.OffsetOutOfRange; below
// the current log start it changes nothing. Returns the new log start
// offset.
//
// The log start offset may land inside a segment and even inside a batch:
// the log stores it in its .log-start-offset checkpoint (synced) before
// anything else changes, so a restart or crash keeps it, and reads below
// it are kerr.OffsetOutOfRange from then on. A topic whose cleanup policy
// lacks delete answers kerr.PolicyViolation, as Kafka does. Producer state
// is kept: a producer whose batches all lie below the new log start still
// continues its sequence (Kafka may forget it). After Close it returns
// ErrClosed.
func (r *Replica) DeleteRecordsBefore(offset int64) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return -1, ErrClosed
	}
	if r.cfg.CleanupPolicy&CleanupDelete == 0 {
		return -1, kerr.PolicyViolation
	}
	hwm := r.hwm.Load()
	if offset == -1 {
		offset = hwm
	}
	if offset < 0 || offset > hwm {
		return -1, kerr.OffsetOutOfRange
	}
	start := r.log.StartOffset()
	if offset <= start {
		return start, nil
	}
	segs := r.log.Segments()
	n := 0
	for n < len(segs)-1 && segs[n+1].BaseOffset <= offset {
		n++
	}
	if err := r.log.AdvanceStartOffset(offset); err != nil {
		if errors.Is(err, log.ErrClosed) {
			return -1, ErrClosed
		}
		return -1, fmt.Errorf("partition: delete records of %s-%d below %d: %w", r.topic, r.partition, offset, err)
	}
	r.txns.trimAborted(r.log.StartOffset())
	// AdvanceStartOffset removed segs[:n]; count and log them.
	var bytes int64
	for _, s := range segs[:n] {
		bytes += s.Size
		r.logger.Info("deleted segment", zap.Int64("base-offset", s.BaseOffset), zap.Int64("next-offset", s.NextOffset),
			zap.Int64("bytes", s.Size), zap.String("reason", "delete-records"))
	}
	r.cleanup.segmentsDeleted.Add(int64(n))
	r.cleanup.bytesDeleted.Add(bytes)
	r.logger.Info("log start offset moved by delete records", zap.Int64("log-start-offset", offset),
		zap.Int64("previous-log-start-offset", start))
	return r.log.StartOffset(), nil
}
