package sharestate

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Config holds the share coordinator's tunables, named after Kafka's.
type Config struct {
	// StateTopicPartitions is the partition count of __share_group_state,
	// used only when the topic is first created. Corresponds to
	// share.coordinator.state.topic.num.partitions. Default 16 (Kafka's is
	// 50: each partition is a Raft group on every replica, opened at
	// start, as for __transaction_state).
	StateTopicPartitions int32
	// StateTopicReplicationFactor is the replication factor of
	// __share_group_state, used only when the topic is first created and
	// capped at the live nodes then. Corresponds to
	// share.coordinator.state.topic.replication.factor. Default 3; zero
	// means the default.
	StateTopicReplicationFactor int16
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config {
	return Config{StateTopicPartitions: 16, StateTopicReplicationFactor: 3}
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	switch {
	case c.StateTopicPartitions < 1:
		return fmt.Errorf("sharestate: share.coordinator.state.topic.num.partitions %d must be at least 1", c.StateTopicPartitions)
	case c.StateTopicReplicationFactor < 0:
		return fmt.Errorf("sharestate: share.coordinator.state.topic.replication.factor %d must be at least 1", c.StateTopicReplicationFactor)
	}
	return nil
}

// Options carries collaborators and test seams.
type Options struct {
	// Logger; nil means nop.
	Logger *zap.Logger
	// Now is the clock (record timestamps); nil means time.Now.
	Now func() time.Time
}
