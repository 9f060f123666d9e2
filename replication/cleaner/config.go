package cleaner

import (
	"fmt"
	"time"
)

// Config schedules the background work that removes old data: retention
// (cleanup.policy delete) and compaction (cleanup.policy compact). Every
// field can also change at run time as a dynamic broker config.
type Config struct {
	// RetentionCheckInterval is the time between two retention passes
	// over every partition. Corresponds to log.retention.check.interval.ms.
	// Default 5 minutes.
	RetentionCheckInterval time.Duration
	// Enable runs the cleaner, which compacts the partitions of compacted
	// topics (__consumer_offsets among them). Corresponds to
	// log.cleaner.enable. Default true.
	Enable bool
	// Backoff is the time between two cleaner rounds. Corresponds to
	// log.cleaner.backoff.ms. Default 15 seconds.
	Backoff time.Duration
	// DedupeBufferSize bounds the memory of one compaction's key map, in
	// bytes. Corresponds to log.cleaner.dedupe.buffer.size. Default 128 MiB.
	DedupeBufferSize int64
	// IOMaxBytesPerSecond throttles the cleaner's reads and writes; zero
	// is unthrottled. Corresponds to log.cleaner.io.max.bytes.per.second.
	// Default 0.
	IOMaxBytesPerSecond int64
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		RetentionCheckInterval: 5 * time.Minute,
		Enable:                 true,
		Backoff:                15 * time.Second,
		DedupeBufferSize:       128 << 20,
	}
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	switch {
	case c.RetentionCheckInterval < time.Millisecond:
		return fmt.Errorf("cleaner: log.retention.check.interval.ms %s must be at least 1ms", c.RetentionCheckInterval)
	case c.Backoff < time.Millisecond:
		return fmt.Errorf("cleaner: log.cleaner.backoff.ms %s must be at least 1ms", c.Backoff)
	case c.DedupeBufferSize < 1<<16:
		return fmt.Errorf("cleaner: log.cleaner.dedupe.buffer.size %d must be at least 65536", c.DedupeBufferSize)
	case c.IOMaxBytesPerSecond < 0:
		return fmt.Errorf("cleaner: log.cleaner.io.max.bytes.per.second %d is negative", c.IOMaxBytesPerSecond)
	}
	return nil
}
