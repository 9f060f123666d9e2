package partition

import (
	"fmt"
	"math"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// TimestampType says which timestamp a partition stores.
type TimestampType int8

// Timestamp types, as message.timestamp.type names them.
const (
	// CreateTime keeps the producer's timestamps (the default).
	CreateTime TimestampType = iota
	// LogAppendTime overwrites each batch's max timestamp with the broker's
	// clock at append.
	LogAppendTime
)

// String returns the name Kafka's message.timestamp.type uses.
func (t TimestampType) String() string {
	switch t {
	case CreateTime:
		return "CreateTime"
	case LogAppendTime:
		return "LogAppendTime"
	default:
		return fmt.Sprintf("TimestampType(%d)", int8(t))
	}
}

// DefaultMaxMessageBytes is Kafka's default max.message.bytes: 1 MiB plus
// the 12 bytes of log overhead (base offset and length).
const DefaultMaxMessageBytes = 1048588

// Config holds one partition's tunables.
type Config struct {
	// Log configures the underlying segmented log.
	Log log.Config
	// MaxMessageBytes bounds one record batch, header included.
	// Corresponds to max.message.bytes. Default 1048588.
	MaxMessageBytes int
	// TimestampType corresponds to message.timestamp.type. Default
	// CreateTime.
	TimestampType TimestampType
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Log:             log.DefaultConfig(),
		MaxMessageBytes: DefaultMaxMessageBytes,
		TimestampType:   CreateTime,
	}
}

// Validate reports a Config whose values cannot work.
func (c Config) Validate() error {
	if err := c.Log.Validate(); err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	if c.MaxMessageBytes <= 0 {
		return fmt.Errorf("partition: max.message.bytes %d must be positive", c.MaxMessageBytes)
	}
	if c.MaxMessageBytes > math.MaxInt32 {
		return fmt.Errorf("partition: max.message.bytes %d must be at most %d", c.MaxMessageBytes, math.MaxInt32)
	}
	if c.MaxMessageBytes < log.BatchHeaderSize {
		return fmt.Errorf("partition: max.message.bytes %d must be at least the %d-byte batch header", c.MaxMessageBytes, log.BatchHeaderSize)
	}
	if c.TimestampType != CreateTime && c.TimestampType != LogAppendTime {
		return fmt.Errorf("partition: message.timestamp.type %d must be CreateTime (0) or LogAppendTime (1)", c.TimestampType)
	}
	return nil
}

// Options carries collaborators and test seams.
type Options struct {
	// Logger; nil means nop. The replica binds topic and partition fields.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FS is the filesystem; nil means the OS.
	FS log.FS
	// Flusher syncs the log in groups; nil means appends are never synced
	// by a background flusher (tests).
	Flusher *log.Flusher
	// Durable, when true, advances the high watermark only over synced
	// offsets, so nothing is visible to consumers or acknowledged before it
	// is on stable storage. When false the high watermark follows the log
	// end offset (flush interval mode, or tests without a Flusher).
	//
	// Durable without a Flusher syncs the log inside every Append (one
	// fsync per request): correct, but slow; give a Flusher in production.
	Durable bool
}
