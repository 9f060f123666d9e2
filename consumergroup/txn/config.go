package txn

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// StateTopic is the internal topic holding the transaction coordinator's
// state, as in Kafka.
const StateTopic = "__transaction_state"

// Config holds the transaction coordinator's tunables, named after
// Kafka's.
type Config struct {
	// StateTopicPartitions is the partition count of __transaction_state,
	// used only when the topic is first created. Corresponds to
	// transaction.state.log.num.partitions. Default 16 (Kafka's is 50:
	// each partition is a Raft group on every replica, opened at start;
	// see doc.go for the measurement).
	StateTopicPartitions int32
	// StateTopicReplicationFactor is the replication factor of
	// __transaction_state, used only when the topic is first created and
	// capped at the live nodes then. Corresponds to
	// transaction.state.log.replication.factor. Default 3; zero means the
	// default.
	StateTopicReplicationFactor int16
	// MaxTimeout bounds the transaction.timeout.ms a producer may ask for
	// (INVALID_TRANSACTION_TIMEOUT above it). Corresponds to
	// transaction.max.timeout.ms. Default 15 minutes.
	MaxTimeout time.Duration
	// IDExpiration is how long a transactional id with no transaction
	// under way is kept after its last use; it is then removed (a
	// tombstone), and its next InitProducerId gets a new producer id.
	// Corresponds to transactional.id.expiration.ms. Default 7 days.
	IDExpiration time.Duration
	// AbortTimedOutInterval is how often transactions open longer than
	// their timeout are looked for and aborted. Corresponds to
	// transaction.abort.timed.out.transaction.cleanup.interval.ms.
	// Default 10 s.
	AbortTimedOutInterval time.Duration
	// RemoveExpiredInterval is how often expired transactional ids are
	// looked for. Corresponds to
	// transaction.remove.expired.transaction.cleanup.interval.ms. Default
	// 1 hour.
	RemoveExpiredInterval time.Duration
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config {
	return Config{
		StateTopicPartitions:        16,
		StateTopicReplicationFactor: 3,
		MaxTimeout:                  15 * time.Minute,
		IDExpiration:                7 * 24 * time.Hour,
		AbortTimedOutInterval:       10 * time.Second,
		RemoveExpiredInterval:       time.Hour,
	}
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	switch {
	case c.StateTopicPartitions < 1:
		return fmt.Errorf("txn: transaction.state.log.num.partitions %d must be at least 1", c.StateTopicPartitions)
	case c.StateTopicReplicationFactor < 0:
		return fmt.Errorf("txn: transaction.state.log.replication.factor %d must be at least 1", c.StateTopicReplicationFactor)
	case c.MaxTimeout < time.Millisecond:
		return fmt.Errorf("txn: transaction.max.timeout.ms %s must be at least 1 ms", c.MaxTimeout)
	case c.IDExpiration < time.Millisecond:
		return fmt.Errorf("txn: transactional.id.expiration.ms %s must be at least 1 ms", c.IDExpiration)
	case c.AbortTimedOutInterval < time.Millisecond:
		return fmt.Errorf("txn: transaction.abort.timed.out.transaction.cleanup.interval.ms %s must be at least 1 ms", c.AbortTimedOutInterval)
	case c.RemoveExpiredInterval < time.Millisecond:
		return fmt.Errorf("txn: transaction.remove.expired.transaction.cleanup.interval.ms %s must be at least 1 ms", c.RemoveExpiredInterval)
	}
	return nil
}

// Options carries collaborators and test seams.
type Options struct {
	// Logger; nil means nop.
	Logger *zap.Logger
	// Now is the clock (transaction start and update times, timeouts,
	// expiry); nil means time.Now.
	Now func() time.Time
}
