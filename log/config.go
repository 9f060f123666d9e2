package log

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.uber.org/zap"
)

// ErrInvalidConfig reports a Config that Validate rejects.
var ErrInvalidConfig = errors.New("log: invalid config")

// minSegmentBytes is Kafka's minimum segment.bytes. A segment smaller than
// a batch simply holds one batch.
const minSegmentBytes = 14

// Config holds one partition log's tunables.
type Config struct {
	// SegmentBytes is the size at which the active segment is rolled.
	// Corresponds to segment.bytes. Default 1 GiB; at least 14 bytes (as in
	// Kafka) and at most 2 GiB - 1, so that positions fit the index.
	SegmentBytes int64
	// SegmentAge is the age of the active segment's first batch (by the
	// injected clock, measured from when the segment was created) at which
	// the next append rolls a new segment. Corresponds to segment.ms.
	// Default 7 days. A segment found on disk by Open counts as created at
	// Open.
	SegmentAge time.Duration
	// IndexIntervalBytes is how many log bytes may lie between two entries
	// of the sparse offset and time indexes. Corresponds to
	// index.interval.bytes. Default 4096.
	IndexIntervalBytes int
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentAge:         7 * 24 * time.Hour,
		IndexIntervalBytes: 4096,
	}
}

// Validate reports a Config whose values cannot work; the error wraps
// ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes < minSegmentBytes:
		return fmt.Errorf("%w: segment bytes %d below %d", ErrInvalidConfig, c.SegmentBytes, minSegmentBytes)
	case c.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("%w: segment bytes %d above 2 GiB - 1", ErrInvalidConfig, c.SegmentBytes)
	case c.SegmentAge <= 0:
		return fmt.Errorf("%w: segment age %s must be positive", ErrInvalidConfig, c.SegmentAge)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("%w: index interval bytes %d is negative", ErrInvalidConfig, c.IndexIntervalBytes)
	}
	return nil
}

// Options carries collaborators and test seams.
type Options struct {
	// Logger receives lifecycle events (open, recover, roll); nil means nop.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FS is the filesystem; nil means the operating system's (OSFS).
	FS FS
	// FileCache keeps sealed segments' .log files open for reads, within
	// a limit shared by every Log using it; nil means DefaultFileCache.
	FileCache *FileCache
	// Flusher makes appends durable in groups. Nil means the Log never
	// fsyncs on its own (Sync and Close still do).
	Flusher *Flusher
	// OnSynced, if set, is called with the new synced offset each time it
	// advances: every offset below it is on stable storage. Calls are in
	// increasing order. It is called from the flusher's goroutine (or from
	// the goroutine calling Sync or Close) while sync locks are held, so it
	// must not block, and must not call Append, Sync, TruncateTo, Close or
	// Delete of any Log.
	OnSynced func(syncedOffset int64)
}

// SetConfig replaces the log's config: SegmentBytes and SegmentAge apply
// from the next append (which may roll at once), IndexIntervalBytes from
// the next roll and to segments the cleaner writes. It fails, changing
// nothing, when cfg does not Validate. Safe for concurrent use.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("set config of log %s: %w", l.dir, err)
	}
	l.cfg.Store(&cfg)
	return nil
}

// Config returns the log's current config. Safe for concurrent use.
func (l *Log) Config() Config { return *l.cfg.Load() }
