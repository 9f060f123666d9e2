package wire

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup"
)

// GroupCoordinator is what the wire layer needs of the group coordinator:
// one method per group API. Each takes a decoded request whose version is
// set and returns the response of the same version, never nil, with
// outcomes as error codes inside. JoinGroup, SyncGroup and OffsetCommit may
// block until ctx ends. *consumergroup.Coordinator implements it; it must
// be safe for concurrent use.
type GroupCoordinator interface {
	FindCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse
	JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse
	SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse
	Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse
	LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse
	OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse
	OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse
	OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse
	ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse
	DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse
	DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse
	// TxnOffsetCommit stores offsets committed inside a transaction: they
	// become visible when the transaction commits, and vanish if it
	// aborts. guard is the verification guard of the group's
	// __consumer_offsets partition (its StartTxnVerification, confirmed
	// by the transaction coordinator): a commit whose transaction ended
	// since is refused with INVALID_TXN_STATE, nothing stored.
	TxnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest, guard uint64) *kmsg.TxnOffsetCommitResponse
	// CompleteTransaction is called once a transaction marker of producer
	// producerID is committed in __consumer_offsets partition index on this
	// node: the producer's pending transactional offsets there become
	// committed (commit) or are dropped.
	CompleteTransaction(index int32, producerID int64, producerEpoch int16, commit bool)
}

var _ GroupCoordinator = (*consumergroup.Coordinator)(nil)
