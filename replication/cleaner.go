package replication

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
)

// CleanupStats counts what the background retention and cleaner removed
// since Open (for a metrics endpoint).
type CleanupStats struct {
	// RetentionChecks counts retention passes over every partition.
	RetentionChecks int64
	// RetentionSegmentsDeleted and RetentionBytesDeleted count what
	// retention deleted.
	RetentionSegmentsDeleted int64
	RetentionBytesDeleted    int64
	// CompactionRuns counts compactions that cleaned a partition.
	CompactionRuns int64
	// CompactionBytesReclaimed is the sum of bytes before minus bytes
	// after over those compactions.
	CompactionBytesReclaimed int64
	// CompactionRecordsRemoved counts records (tombstones included)
	// compaction removed.
	CompactionRecordsRemoved int64
	// Errors counts failed retention passes and compactions of single
	// partitions (each is logged).
	Errors int64
}

// cleanupCounters is CleanupStats, updated atomically.
type cleanupCounters struct {
	retentionChecks, retentionSegments, retentionBytes atomic.Int64
	compactionRuns, compactionBytes, compactionRecords atomic.Int64
	errors                                             atomic.Int64
}

// CleanupStats returns the cleanup counters. Safe for concurrent use.
func (c *Cluster) CleanupStats() CleanupStats {
	s := &c.counters
	return CleanupStats{
		RetentionChecks:          s.retentionChecks.Load(),
		RetentionSegmentsDeleted: s.retentionSegments.Load(),
		RetentionBytesDeleted:    s.retentionBytes.Load(),
		CompactionRuns:           s.compactionRuns.Load(),
		CompactionBytesReclaimed: s.compactionBytes.Load(),
		CompactionRecordsRemoved: s.compactionRecords.Load(),
		Errors:                   s.errors.Load(),
	}
}

// startSchedules starts the retention and cleaner goroutines; Close stops
// them and waits for them.
func (c *Cluster) startSchedules() {
	ctx, cancel := context.WithCancel(context.Background())
	c.stopSchedules = cancel
	c.retentionWake = make(chan struct{}, 1)
	c.cleanerWake = make(chan struct{}, 1)
	c.schedules.Add(2)
	go c.runRetention(ctx)
	go c.runCleaner(ctx)
}

// wakeSchedules makes both goroutines re-read their schedule (after a
// dynamic broker config change). It never blocks.
func (c *Cluster) wakeSchedules() {
	for _, ch := range []chan struct{}{c.retentionWake, c.cleanerWake} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// cleanerConfig returns the schedule in force.
func (c *Cluster) cleanerConfig() CleanerConfig {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.effective.Cleaner
}

// runRetention enforces retention on every replica each
// RetentionCheckInterval until ctx ends.
func (c *Cluster) runRetention(ctx context.Context) {
	defer c.schedules.Done()
	for {
		timer := time.NewTimer(c.cleanerConfig().RetentionCheckInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-c.retentionWake:
			// The interval changed: start over with the new one.
			timer.Stop()
			continue
		case <-timer.C:
		}
		c.enforceRetention(ctx)
	}
}

// enforceRetention runs one retention pass over every replica.
func (c *Cluster) enforceRetention(ctx context.Context) {
	c.counters.retentionChecks.Add(1)
	for _, t := range c.Topics() {
		for _, p := range t.partitions {
			if ctx.Err() != nil {
				return
			}
			res, err := p.replica.EnforceRetention(c.now())
			switch {
			case errors.Is(err, partition.ErrClosed):
				// Deleted or closing meanwhile.
				continue
			case err != nil:
				c.counters.errors.Add(1)
				c.logger.Warn("retention failed", zap.String("topic", t.name), zap.Int32("partition", p.Index), zap.Error(err))
				continue
			}
			if res.SegmentsDeleted == 0 {
				continue
			}
			c.counters.retentionSegments.Add(int64(res.SegmentsDeleted))
			c.counters.retentionBytes.Add(res.BytesDeleted)
			c.logger.Info("retention deleted segments", zap.String("topic", t.name), zap.Int32("partition", p.Index),
				zap.Int("segments", res.SegmentsDeleted), zap.Int64("bytes", res.BytesDeleted),
				zap.Int64("log-start-offset", res.LogStartOffset))
		}
	}
}

// runCleaner compacts the partitions of compacted topics, one at a time,
// each Backoff while the cleaner is enabled, until ctx ends.
func (c *Cluster) runCleaner(ctx context.Context) {
	defer c.schedules.Done()
	for {
		cfg := c.cleanerConfig()
		var tick <-chan time.Time
		var timer *time.Timer
		if cfg.Enable {
			timer = time.NewTimer(cfg.Backoff)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-c.cleanerWake:
			if timer != nil {
				timer.Stop()
			}
			continue
		case <-tick:
		}
		c.compactAll(ctx, partition.CleanLimits{MaxMapBytes: cfg.DedupeBufferSize, MaxBytesPerSecond: cfg.IOMaxBytesPerSecond})
	}
}

// compactAll runs Compact on every replica whose policy includes compact;
// Compact itself decides whether one is due.
func (c *Cluster) compactAll(ctx context.Context, limits partition.CleanLimits) {
	for _, t := range c.Topics() {
		if t.config.CleanupPolicy&partition.CleanupCompact == 0 {
			continue
		}
		for _, p := range t.partitions {
			res, err := p.replica.Compact(ctx, c.now(), limits)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, partition.ErrClosed):
				continue
			case err != nil:
				c.counters.errors.Add(1)
				c.logger.Warn("compaction failed", zap.String("topic", t.name), zap.Int32("partition", p.Index), zap.Error(err))
				continue
			}
			if !res.Cleaned {
				continue
			}
			c.counters.compactionRuns.Add(1)
			c.counters.compactionBytes.Add(res.BytesBefore - res.BytesAfter)
			c.counters.compactionRecords.Add(res.RecordsRemoved)
			c.logger.Info("compacted", zap.String("topic", t.name), zap.Int32("partition", p.Index),
				zap.Int64("bytes-before", res.BytesBefore), zap.Int64("bytes-after", res.BytesAfter),
				zap.Int64("records-removed", res.RecordsRemoved), zap.Int64("tombstones-removed", res.TombstonesRemoved),
				zap.Int64("first-dirty-offset", res.FirstDirtyOffsetAfterClean))
		}
	}
}
