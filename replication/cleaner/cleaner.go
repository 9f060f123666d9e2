package cleaner

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
)

// Replica is what the cleaner needs of a partition replica.
// *partition.Replica implements it.
type Replica interface {
	EnforceRetention(now time.Time) (partition.RetentionResult, error)
	Compact(ctx context.Context, now time.Time, limits partition.CleanLimits) (partition.CleanResult, error)
}

var _ Replica = (*partition.Replica)(nil)

// Target is one partition to clean.
type Target struct {
	// Topic and Partition name it in logs.
	Topic     string
	Partition int32
	// Compacted reports a cleanup.policy that includes compact: only
	// those are compacted.
	Compacted bool
	// Replica is the partition's local replica.
	Replica Replica
}

// Options carries collaborators and test seams.
type Options struct {
	// Logger; nil means nop.
	Logger *zap.Logger
	// Now is the clock passed to the replicas; nil means time.Now.
	Now func() time.Time
}

// Stats counts what retention and compaction removed since Start (for a
// metrics endpoint).
type Stats struct {
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

// counters is Stats, updated atomically.
type counters struct {
	retentionChecks, retentionSegments, retentionBytes atomic.Int64
	compactionRuns, compactionBytes, compactionRecords atomic.Int64
	errors                                             atomic.Int64
}

// Cleaner runs the retention and cleaner schedules over the targets the
// cluster lists. Safe for concurrent use.
type Cleaner struct {
	targets func() []Target
	logger  *zap.Logger
	now     func() time.Time

	counters counters

	// stop cancels both goroutines (and a compaction in progress); wg
	// waits for them. The wake channels make them re-read the schedule.
	stop          context.CancelFunc
	wg            sync.WaitGroup
	retentionWake chan struct{}
	cleanerWake   chan struct{}

	// mu guards cfg.
	mu  sync.Mutex
	cfg Config
}

// Start runs the schedules of cfg over targets, which lists the
// partitions to clean on every pass; it is called without any lock of the
// cleaner held. Stop ends them.
func Start(cfg Config, targets func() []Target, opts Options) *Cleaner {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cleaner{
		targets:       targets,
		logger:        opts.Logger,
		now:           opts.Now,
		stop:          cancel,
		retentionWake: make(chan struct{}, 1),
		cleanerWake:   make(chan struct{}, 1),
		cfg:           cfg,
	}
	c.wg.Add(2)
	go c.runRetention(ctx)
	go c.runCleaner(ctx)
	return c
}

// Stop cancels the schedules (and a compaction in progress) and waits for
// both goroutines. Later calls return at once.
func (c *Cleaner) Stop() {
	c.stop()
	c.wg.Wait()
}

// SetConfig replaces the schedule; both goroutines restart their timers
// with it. It never blocks on a pass in progress.
func (c *Cleaner) SetConfig(cfg Config) {
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
	for _, ch := range []chan struct{}{c.retentionWake, c.cleanerWake} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Config returns the schedule in force.
func (c *Cleaner) Config() Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// Stats returns the counters.
func (c *Cleaner) Stats() Stats {
	s := &c.counters
	return Stats{
		RetentionChecks:          s.retentionChecks.Load(),
		RetentionSegmentsDeleted: s.retentionSegments.Load(),
		RetentionBytesDeleted:    s.retentionBytes.Load(),
		CompactionRuns:           s.compactionRuns.Load(),
		CompactionBytesReclaimed: s.compactionBytes.Load(),
		CompactionRecordsRemoved: s.compactionRecords.Load(),
		Errors:                   s.errors.Load(),
	}
}

// runRetention enforces retention on every target each
// RetentionCheckInterval until ctx ends.
func (c *Cleaner) runRetention(ctx context.Context) {
	defer c.wg.Done()
	for {
		timer := time.NewTimer(c.Config().RetentionCheckInterval)
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

// enforceRetention runs one retention pass over every target.
func (c *Cleaner) enforceRetention(ctx context.Context) {
	c.counters.retentionChecks.Add(1)
	for _, t := range c.targets() {
		if ctx.Err() != nil {
			return
		}
		res, err := t.Replica.EnforceRetention(c.now())
		switch {
		case errors.Is(err, partition.ErrClosed):
			// Deleted or closing meanwhile.
			continue
		case err != nil:
			c.counters.errors.Add(1)
			c.logger.Warn("retention failed", zap.String("topic", t.Topic), zap.Int32("partition", t.Partition), zap.Error(err))
			continue
		}
		if res.SegmentsDeleted == 0 {
			continue
		}
		c.counters.retentionSegments.Add(int64(res.SegmentsDeleted))
		c.counters.retentionBytes.Add(res.BytesDeleted)
		c.logger.Info("retention deleted segments", zap.String("topic", t.Topic), zap.Int32("partition", t.Partition),
			zap.Int("segments", res.SegmentsDeleted), zap.Int64("bytes", res.BytesDeleted),
			zap.Int64("log-start-offset", res.LogStartOffset))
	}
}

// runCleaner compacts the compacted targets, one at a time, each Backoff
// while the cleaner is enabled, until ctx ends.
func (c *Cleaner) runCleaner(ctx context.Context) {
	defer c.wg.Done()
	for {
		cfg := c.Config()
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

// compactAll runs Compact on every compacted target; Compact itself
// decides whether one is due.
func (c *Cleaner) compactAll(ctx context.Context, limits partition.CleanLimits) {
	for _, t := range c.targets() {
		if !t.Compacted {
			continue
		}
		res, err := t.Replica.Compact(ctx, c.now(), limits)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, partition.ErrClosed):
			continue
		case err != nil:
			c.counters.errors.Add(1)
			c.logger.Warn("compaction failed", zap.String("topic", t.Topic), zap.Int32("partition", t.Partition), zap.Error(err))
			continue
		}
		if !res.Cleaned {
			continue
		}
		c.counters.compactionRuns.Add(1)
		c.counters.compactionBytes.Add(res.BytesBefore - res.BytesAfter)
		c.counters.compactionRecords.Add(res.RecordsRemoved)
		c.logger.Info("compacted", zap.String("topic", t.Topic), zap.Int32("partition", t.Partition),
			zap.Int64("bytes-before", res.BytesBefore), zap.Int64("bytes-after", res.BytesAfter),
			zap.Int64("records-removed", res.RecordsRemoved), zap.Int64("tombstones-removed", res.TombstonesRemoved),
			zap.Int64("first-dirty-offset", res.FirstDirtyOffsetAfterClean))
	}
}
