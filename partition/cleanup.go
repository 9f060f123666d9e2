package partition

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// cleanupState is a replica's live config and its retention and compaction
// state (retention.go, delete_records.go, compact.go).
type cleanupState struct {
	// config is the current config, for readers that take no lock
	// (Config, EnforceRetention, Compact). Replica.cfg holds the same value
	// for Append; SetConfig replaces both under Replica.mu.
	config atomic.Pointer[Config]
	// cleanMu lets one Compact run at a time. It is taken before
	// Replica.mu, and Replica.mu only for the swap of each cleaned group.
	cleanMu sync.Mutex

	segmentsDeleted  atomic.Int64
	bytesDeleted     atomic.Int64
	recordsCompacted atomic.Int64
	compactions      atomic.Int64
}

// Stats are a replica's cleanup counters since Open, for metrics.
type Stats struct {
	// SegmentsDeleted and BytesDeleted count the segments (and their .log
	// bytes) that retention (EnforceRetention) and DeleteRecordsBefore
	// removed.
	SegmentsDeleted, BytesDeleted int64
	// RecordsCompacted counts the records compaction removed, tombstones
	// and keyless records included.
	RecordsCompacted int64
	// Compactions counts the Compact calls that cleaned.
	Compactions int64
}

// Stats returns the replica's cleanup counters. Safe for concurrent use;
// each counter is read atomically, not all of them together.
func (r *Replica) Stats() Stats {
	c := &r.cleanup
	return Stats{
		SegmentsDeleted:  c.segmentsDeleted.Load(),
		BytesDeleted:     c.bytesDeleted.Load(),
		RecordsCompacted: c.recordsCompacted.Load(),
		Compactions:      c.compactions.Load(),
	}
}

// SetConfig applies a changed topic config to the live replica: later
// appends, rolls, retention and compaction use it. The log's SegmentBytes
// and SegmentAge apply from the next append, IndexIntervalBytes from the
// next roll. It fails, changing nothing, when cfg does not Validate. It
// waits for an append in progress and does no I/O. After Close it still
// succeeds (and changes nothing that matters).
func (r *Replica) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.log.SetConfig(cfg.Log); err != nil {
		return fmt.Errorf("partition: set config of %s-%d: %w", r.topic, r.partition, err)
	}
	r.cfg = cfg
	r.cleanup.config.Store(&cfg)
	r.logger.Info("config changed",
		zap.Uint8("cleanup-policy", uint8(cfg.CleanupPolicy)),
		zap.Duration("retention", cfg.RetentionTime),
		zap.Int64("retention-bytes", cfg.RetentionBytes),
		zap.Int64("segment-bytes", cfg.Log.SegmentBytes),
		zap.Duration("segment-age", cfg.Log.SegmentAge))
	return nil
}

// Config returns the replica's current config. Safe for concurrent use.
func (r *Replica) Config() Config { return *r.cleanup.config.Load() }

// checkProduced applies the rules of the topic config to a produced batch
// (whole, verified, header h), as Kafka's LogValidator does:
//
//   - CreateTime: a base or max timestamp more than TimestampBeforeMax
//     before or TimestampAfterMax after the broker clock is
//     InvalidTimestamp (KIP-937). Only the header's two timestamps are
//     checked, so that no batch is decoded for it; -1 (no timestamp)
//     passes, as in Kafka.
//
// A keyless record in a compacted topic (InvalidRecord) is checkRecords'
// work, done in its one pass over the decoded records.
//
// Called by validate with r.mu held.
func (r *Replica) checkProduced(batch []byte, h log.BatchHeader) error {
	cfg := &r.cfg
	if cfg.TimestampType == CreateTime && (cfg.TimestampBeforeMax != math.MaxInt64 || cfg.TimestampAfterMax != math.MaxInt64) {
		now := r.now().UnixMilli()
		// Durations in ms never overflow when added to a ms clock.
		lowest, highest := now-cfg.TimestampBeforeMax.Milliseconds(), now+cfg.TimestampAfterMax.Milliseconds()
		for _, ts := range []int64{h.BaseTimestamp, h.MaxTimestamp} {
			if ts != -1 && (ts < lowest || ts > highest) {
				return r.reject(kerr.InvalidTimestamp, fmt.Errorf("timestamp %d outside [%d, %d] (message.timestamp.before.max.ms, after.max.ms)", ts, lowest, highest))
			}
		}
	}
	return nil
}
