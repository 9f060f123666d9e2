package consumergroup

// CONTRACT FILE — the agreed public surface of package consumergroup. The
// consumergroup helper replaces every body with the real implementation,
// moving each piece into the file named for it, and deletes this file.
// Signatures and documented semantics must not change without agreement:
// wire and cmd are written against them.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication"
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
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config { panic("contract") }

// Validate reports a Config that cannot work.
func (c Config) Validate() error { panic("contract") }

// Options carries collaborators and test seams.
type Options struct {
	// Logger; nil means nop.
	Logger *zap.Logger
}

// Coordinator is the group coordinator of every consumer group whose
// __consumer_offsets partition this node leads (on a single node: all).
// Every method takes a kmsg request whose version is set and returns the
// response of the same version (req.ResponseKind()), never nil; errors are
// error codes in the response. Safe for concurrent use.
type Coordinator struct{}

// New creates __consumer_offsets if it does not exist (internal,
// cleanup.policy=compact) and loads every group's committed offsets and
// metadata from it. Until loading finishes, group requests answer
// COORDINATOR_LOAD_IN_PROGRESS.
func New(cluster *replication.Cluster, cfg Config, opts Options) (*Coordinator, error) {
	panic("contract")
}

// Close stops the coordinator's timers and goroutines and fails pending
// joins and syncs with NOT_COORDINATOR; it waits for them to exit.
func (c *Coordinator) Close(ctx context.Context) error { panic("contract") }

// FindCoordinator answers for group keys (key type 0): this node, for the
// group's partition hash(group) mod OffsetsTopicPartitions. Transaction
// keys (type 1) are COORDINATOR_NOT_AVAILABLE until transactions exist.
// Handles batched keys (v4+).
func (c *Coordinator) FindCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	panic("contract")
}

// JoinGroup blocks until the rebalance the member joins completes (or ctx
// ends): the classic protocol state machine.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	panic("contract")
}

// SyncGroup blocks until the leader's assignment is known (or ctx ends).
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	panic("contract")
}

// Heartbeat keeps a member's session alive; it does not block.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	panic("contract")
}

// LeaveGroup removes members (batched, v3+).
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	panic("contract")
}

// OffsetCommit stores offsets durably in __consumer_offsets before
// answering.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	panic("contract")
}

// OffsetFetch returns committed offsets (batched groups, v8+).
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	panic("contract")
}

// OffsetDelete deletes committed offsets of partitions no member
// consumes.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	panic("contract")
}

// ListGroups lists groups, filtered by state (v4+) and type (v5+).
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	panic("contract")
}

// DescribeGroups describes groups: state, protocol, members and their
// assignments.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	panic("contract")
}

// DeleteGroups deletes empty groups and their offsets.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	panic("contract")
}
