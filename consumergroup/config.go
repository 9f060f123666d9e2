package consumergroup

import (
	"fmt"
	"math"
	"time"

	"go.uber.org/zap"
)

// OffsetsTopic is the internal topic holding committed offsets and group
// metadata, as in Kafka.
const OffsetsTopic = "__consumer_offsets"

// Config holds the coordinator's tunables, named after Kafka's.
type Config struct {
	// OffsetsTopicPartitions is the partition count of __consumer_offsets,
	// used only when the topic is first created. Corresponds to
	// offsets.topic.num.partitions. Default 16 (Kafka's is 50; a single
	// node gains nothing from more files).
	OffsetsTopicPartitions int32
	// OffsetsTopicReplicationFactor is the replication factor of
	// __consumer_offsets, used only when the topic is first created and
	// capped at the number of live nodes then (a single node creates it
	// with 1). Corresponds to offsets.topic.replication.factor. Default 3;
	// zero means the default.
	OffsetsTopicReplicationFactor int16
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (INVALID_SESSION_TIMEOUT outside). Correspond to
	// group.min.session.timeout.ms (6 s) and group.max.session.timeout.ms
	// (30 min).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay delays the first rebalance of an empty group so
	// that members starting together join one generation. Corresponds to
	// group.initial.rebalance.delay.ms. Default 3 s.
	InitialRebalanceDelay time.Duration
	// MaxGroupSize bounds the members of one group (GROUP_MAX_SIZE_REACHED).
	// Corresponds to group.max.size. Default 2147483647.
	MaxGroupSize int
	// OffsetsRetention is how long the committed offsets of an empty group
	// are kept. Corresponds to offsets.retention.minutes. Default 7 days.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is how often expired offsets are looked
	// for. Corresponds to offsets.retention.check.interval.ms. Default 10
	// minutes; zero means the default.
	OffsetsRetentionCheckInterval time.Duration
	// StuckRebalances is how many rebalances (generations) a group may go
	// through without its committed offset of a lagging partition moving
	// before the partition is reported stuck (stuck.go). Corresponds to
	// group.stuck.rebalances. Default 3; zero turns this test off.
	StuckRebalances int
	// StuckTimeout is how long the committed offset of a lagging partition
	// may stay put while the group has members before the partition is
	// reported stuck. Corresponds to group.stuck.timeout.ms. Default 5
	// minutes; zero turns this test off.
	StuckTimeout time.Duration
	// ShareSessionTimeout is how long a share group member may go
	// without a heartbeat before it is removed, for groups that do not
	// set share.session.timeout.ms. Corresponds to
	// group.share.session.timeout.ms. Default 45 s; zero means the
	// default.
	ShareSessionTimeout time.Duration
	// ShareHeartbeatInterval is the heartbeat interval told to share
	// group members, for groups that do not set
	// share.heartbeat.interval.ms. Corresponds to
	// group.share.heartbeat.interval.ms. Default 5 s; zero means the
	// default (at most a third of the session timeout).
	ShareHeartbeatInterval time.Duration
	// ShareMaxSize bounds the members of one share group
	// (GROUP_MAX_SIZE_REACHED). Corresponds to group.share.max.size.
	// Default 200; zero means the default.
	ShareMaxSize int
}

// maxOffsetMetadataBytes is offset.metadata.max.bytes.
const maxOffsetMetadataBytes = 4096

// DefaultConfig returns the defaults above.
func DefaultConfig() Config {
	return Config{
		OffsetsTopicPartitions:        16,
		OffsetsTopicReplicationFactor: 3,
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		InitialRebalanceDelay:         3 * time.Second,
		MaxGroupSize:                  math.MaxInt32,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		StuckRebalances:               3,
		StuckTimeout:                  5 * time.Minute,
		ShareSessionTimeout:           45 * time.Second,
		ShareHeartbeatInterval:        5 * time.Second,
		ShareMaxSize:                  200,
	}
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	switch {
	case c.OffsetsTopicPartitions < 1:
		return fmt.Errorf("consumergroup: offsets.topic.num.partitions %d must be at least 1", c.OffsetsTopicPartitions)
	case c.OffsetsTopicReplicationFactor < 0:
		return fmt.Errorf("consumergroup: offsets.topic.replication.factor %d must be at least 1", c.OffsetsTopicReplicationFactor)
	case c.MinSessionTimeout <= 0:
		return fmt.Errorf("consumergroup: group.min.session.timeout.ms %s must be positive", c.MinSessionTimeout)
	case c.MaxSessionTimeout < c.MinSessionTimeout:
		return fmt.Errorf("consumergroup: group.max.session.timeout.ms %s is below group.min.session.timeout.ms %s", c.MaxSessionTimeout, c.MinSessionTimeout)
	case c.InitialRebalanceDelay < 0:
		return fmt.Errorf("consumergroup: group.initial.rebalance.delay.ms %s is negative", c.InitialRebalanceDelay)
	case c.MaxGroupSize < 1:
		return fmt.Errorf("consumergroup: group.max.size %d must be at least 1", c.MaxGroupSize)
	case c.OffsetsRetention <= 0:
		return fmt.Errorf("consumergroup: offsets.retention.minutes %s must be positive", c.OffsetsRetention)
	case c.StuckRebalances < 0:
		return fmt.Errorf("consumergroup: group.stuck.rebalances %d is negative", c.StuckRebalances)
	case c.StuckTimeout < 0:
		return fmt.Errorf("consumergroup: group.stuck.timeout.ms %s is negative", c.StuckTimeout)
	case c.ShareSessionTimeout < 0 || c.ShareHeartbeatInterval < 0 || c.ShareMaxSize < 0:
		return fmt.Errorf("consumergroup: group.share.session.timeout.ms %s, group.share.heartbeat.interval.ms %s and group.share.max.size %d must not be negative", c.ShareSessionTimeout, c.ShareHeartbeatInterval, c.ShareMaxSize)
	}
	c = c.withShareDefaults()
	switch {
	case c.ShareSessionTimeout <= 0:
		return fmt.Errorf("consumergroup: group.share.session.timeout.ms %s must be positive", c.ShareSessionTimeout)
	case c.ShareHeartbeatInterval <= 0 || c.ShareHeartbeatInterval >= c.ShareSessionTimeout:
		return fmt.Errorf("consumergroup: group.share.heartbeat.interval.ms %s must be positive and below group.share.session.timeout.ms %s", c.ShareHeartbeatInterval, c.ShareSessionTimeout)
	case c.ShareMaxSize < 1:
		return fmt.Errorf("consumergroup: group.share.max.size %d must be at least 1", c.ShareMaxSize)
	case c.OffsetsRetentionCheckInterval < 0:
		return fmt.Errorf("consumergroup: offsets.retention.check.interval.ms %s is negative", c.OffsetsRetentionCheckInterval)
	}
	return nil
}

// withShareDefaults returns c with zero share group fields set to their
// defaults.
func (c Config) withShareDefaults() Config {
	d := DefaultConfig()
	if c.ShareSessionTimeout == 0 {
		c.ShareSessionTimeout = d.ShareSessionTimeout
	}
	if c.ShareHeartbeatInterval == 0 {
		c.ShareHeartbeatInterval = min(d.ShareHeartbeatInterval, c.ShareSessionTimeout/3)
	}
	if c.ShareMaxSize == 0 {
		c.ShareMaxSize = d.ShareMaxSize
	}
	return c
}

// Options carries collaborators and test seams.
type Options struct {
	// Logger; nil means nop.
	Logger *zap.Logger
	// SharePersister holds the share-partition states of share groups
	// (package consumergroup/sharestate's Persister, adapted): DeleteGroups deletes a share
	// group's states through it, and the share group offset APIs read
	// and reset them. nil: those answer COORDINATOR_NOT_AVAILABLE for
	// share groups with state.
	SharePersister ShareStateStore
}
