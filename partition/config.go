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

	// CleanupPolicy says how old data goes: deleted by retention, compacted
	// by key, or both. Corresponds to cleanup.policy. Default CleanupDelete.
	CleanupPolicy CleanupPolicy
	// RetentionTime is how long a segment is kept after its newest record's
	// timestamp; negative keeps forever. Corresponds to retention.ms.
	// Default 7 days.
	RetentionTime time.Duration
	// RetentionBytes bounds a partition's size; whole oldest segments are
	// deleted while it is above. Negative is unbounded. Corresponds to
	// retention.bytes. Default -1.
	RetentionBytes int64
	// DeleteRetention is how long a compacted topic keeps tombstones.
	// Corresponds to delete.retention.ms. Default 1 day.
	DeleteRetention time.Duration
	// MinCompactionLag is the minimum age of a record before compaction may
	// remove it. Corresponds to min.compaction.lag.ms. Default 0.
	MinCompactionLag time.Duration
	// MaxCompactionLag is the age after which a record is compacted even
	// below MinCleanableDirtyRatio. Corresponds to max.compaction.lag.ms.
	// Default unbounded (math.MaxInt64).
	MaxCompactionLag time.Duration
	// MinCleanableDirtyRatio is the share of the log that must be
	// uncompacted before the cleaner compacts it. Corresponds to
	// min.cleanable.dirty.ratio. Default 0.5.
	MinCleanableDirtyRatio float64
	// TimestampBeforeMax and TimestampAfterMax bound how far a CreateTime
	// record's timestamp may lie before or after the broker's clock
	// (INVALID_TIMESTAMP beyond). Correspond to
	// message.timestamp.before.max.ms and message.timestamp.after.max.ms
	// (KIP-937). Default unbounded.
	TimestampBeforeMax, TimestampAfterMax time.Duration
	// MinInSyncReplicas is how many replicas, the leader included, must be
	// in sync for an acks=all produce to be accepted (NOT_ENOUGH_REPLICAS
	// otherwise; the wire layer checks it before the append). acks=0 and
	// acks=1 ignore it. Corresponds to min.insync.replicas. Default 1; 0
	// counts as 1.
	MinInSyncReplicas int
	// ProducerIDExpiration is how long the state of a producer with no
	// transaction under way is kept after its last batch, measured on the
	// partition's clock (the largest timestamp in its log, see
	// expire.go), not the broker's. Corresponds to the broker's
	// producer.id.expiration.ms. Default 1 day. Every replica of a
	// partition must use the same value: their producer checks must
	// agree.
	ProducerIDExpiration time.Duration
}

// CleanupPolicy is a set of cleanup.policy values.
type CleanupPolicy uint8

// Cleanup policies; a topic may have both.
const (
	// CleanupDelete deletes old segments by retention.ms and
	// retention.bytes.
	CleanupDelete CleanupPolicy = 1 << iota
	// CleanupCompact keeps the newest record per key.
	CleanupCompact
)

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Log:                    log.DefaultConfig(),
		MaxMessageBytes:        DefaultMaxMessageBytes,
		TimestampType:          CreateTime,
		CleanupPolicy:          CleanupDelete,
		RetentionTime:          7 * 24 * time.Hour,
		RetentionBytes:         -1,
		DeleteRetention:        24 * time.Hour,
		MaxCompactionLag:       math.MaxInt64,
		MinCleanableDirtyRatio: 0.5,
		TimestampBeforeMax:     math.MaxInt64,
		TimestampAfterMax:      math.MaxInt64,
		MinInSyncReplicas:      1,
		ProducerIDExpiration:   24 * time.Hour,
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
	switch {
	case c.CleanupPolicy == 0 || c.CleanupPolicy&^(CleanupDelete|CleanupCompact) != 0:
		return fmt.Errorf("partition: cleanup.policy %d must be delete, compact or both", c.CleanupPolicy)
	case c.DeleteRetention < 0:
		return fmt.Errorf("partition: delete.retention.ms %s is negative", c.DeleteRetention)
	case c.MinCompactionLag < 0:
		return fmt.Errorf("partition: min.compaction.lag.ms %s is negative", c.MinCompactionLag)
	case c.MaxCompactionLag < c.MinCompactionLag:
		return fmt.Errorf("partition: max.compaction.lag.ms %s is below min.compaction.lag.ms %s", c.MaxCompactionLag, c.MinCompactionLag)
	case c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1:
		return fmt.Errorf("partition: min.cleanable.dirty.ratio %g must be between 0 and 1", c.MinCleanableDirtyRatio)
	case c.TimestampBeforeMax < 0 || c.TimestampAfterMax < 0:
		return fmt.Errorf("partition: message.timestamp.before.max.ms and after.max.ms must not be negative")
	case c.ProducerIDExpiration < time.Millisecond:
		return fmt.Errorf("partition: producer.id.expiration.ms %s must be at least 1 ms", c.ProducerIDExpiration)
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
	// ExternalHighWatermark, when true, hands the high watermark to the
	// replica's owner (replication, with the Raft commit index): Append,
	// Apply and the Flusher's syncs no longer move it past the bound the
	// owner last gave AdvanceHighWatermark. The high watermark is then the
	// lowest of that bound, the log end and, with Durable, the synced
	// offset. Open starts both at the log start, so nothing is visible
	// until the owner advances the bound. Default false: the high
	// watermark follows the log as Durable says.
	ExternalHighWatermark bool
}
