package sharestate

import "context"

// TopicName is the internal compacted topic holding the share-partition
// states.
const TopicName = "__share_group_state"

// Key names one share-partition: share group Group's view of partition
// Partition of the topic with id TopicID.
type Key struct {
	Group     string
	TopicID   [16]byte
	Partition int32
}

// RecordState is the durable state of a run of in-flight records, with
// Kafka's codes. Acquired (1) is never stored: an acquisition lives only
// on the partition leader, and after a failover acquired records are
// available again with their stored delivery count.
type RecordState int8

const (
	// Available records may be acquired (again).
	Available RecordState = 0
	// Acknowledged records were accepted: processing is complete.
	Acknowledged RecordState = 2
	// Archived records were rejected, reached the delivery limit, or were
	// skipped: they are never delivered again.
	Archived RecordState = 4
)

// Batch is a run of offsets First..Last (inclusive) in one state with
// one delivery count.
type Batch struct {
	First         int64
	Last          int64
	State         RecordState
	DeliveryCount int16
}

// State is a share-partition's durable state.
type State struct {
	// StateEpoch is set by Initialize; -1 when the key was never
	// initialized (or was deleted): then StartOffset is -1 and Batches
	// is empty.
	StateEpoch int32
	// LeaderEpoch is the data partition leader epoch of the last Read or
	// Write; -1 for none.
	LeaderEpoch int32
	// StartOffset is the share-partition start offset (SPSO): every
	// record before it is complete (acknowledged or archived).
	StartOffset int64
	// Batches are the records at or after StartOffset whose state is not
	// Available or whose delivery count is not 0, sorted by First, not
	// overlapping.
	Batches []Batch
}

// Write is one durable change of a share-partition.
type Write struct {
	// StateEpoch must equal the stored one (FENCED_STATE_EPOCH).
	StateEpoch int32
	// LeaderEpoch must not be older than the stored one
	// (FENCED_LEADER_EPOCH); it is stored.
	LeaderEpoch int32
	// StartOffset is the new start offset, or -1 to keep it. Batches
	// ending before the start offset are dropped from the state.
	StartOffset int64
	// Batches replace the state of their offset ranges.
	Batches []Batch
}

// Summary is what ReadShareGroupStateSummary answers: enough for
// DescribeShareGroupOffsets without the in-flight batches.
type Summary struct {
	StateEpoch  int32
	LeaderEpoch int32
	StartOffset int64
	// DeliveryCompleteCount is the number of offsets at or after
	// StartOffset acknowledged or archived (KIP-1226), -1 when unknown
	// (no state, or a coordinator answering ReadShareGroupStateSummary
	// v0).
	DeliveryCompleteCount int32
}

// Persister reads and writes share-partition states at their share
// coordinator, wherever it is. Every method returns only once the change
// is committed in __share_group_state (replicated as acks=all), or an
// error; it retries NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS and
// COORDINATOR_NOT_AVAILABLE until ctx ends. Errors a caller acts on wrap
// kerr.FencedStateEpoch and kerr.FencedLeaderEpoch. Safe for concurrent
// use.
type Persister interface {
	// Initialize creates, or resets, the state of key: start offset
	// startOffset, no batches, state epoch stateEpoch, which must be
	// higher than the stored one (FENCED_STATE_EPOCH otherwise).
	Initialize(ctx context.Context, key Key, stateEpoch int32, startOffset int64) error
	// Read returns key's state (StateEpoch -1 when not initialized) and
	// stores leaderEpoch, fencing older leaders.
	Read(ctx context.Context, key Key, leaderEpoch int32) (State, error)
	// Write applies w to key's state.
	Write(ctx context.Context, key Key, w Write) error
	// ReadSummary returns key's start offset and epochs without fencing
	// anyone (StateEpoch -1 when not initialized).
	ReadSummary(ctx context.Context, key Key) (Summary, error)
	// Delete removes key's state (a tombstone in the topic).
	Delete(ctx context.Context, key Key) error
}
