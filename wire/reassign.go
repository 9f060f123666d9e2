package wire

import (
	"context"

	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/replication/meta"
)

// PeerClientID is the client id a node sends when it passes a request on
// to another node (an ElectLeaders for a partition the other node
// leads, a reassignment to finalise, a node registering to join): a
// request with it is answered there and never passed on again, and it
// is shown the APIs between nodes (it has forwardClientPrefix).
const PeerClientID = forwardClientPrefix + "peer"

// Reassigner is what the reassignment and election APIs need of the
// cluster: the reassignment methods run on the metadata leader and
// answer NOT_CONTROLLER (a *meta.NotLeaderError) elsewhere.
type Reassigner interface {
	// AlterReassignment starts, changes or (nil target) cancels one
	// partition's reassignment; allowRFChange false refuses a target of
	// another size than the current replica list
	// (INVALID_REPLICATION_FACTOR, KIP-860).
	AlterReassignment(ctx context.Context, topic string, partition int32, target []int32, allowRFChange bool) error
	// Reassignments returns the reassignments in progress.
	Reassignments() ([]replication.Reassignment, error)
	// CompleteReassignment finalises a reassignment on behalf of the
	// partition leader, node from (AlterPartition).
	CompleteReassignment(ctx context.Context, from int32, topic string, partition int32, target []int32) error
	// ElectPreferred hands a partition's leadership to its preferred
	// replica, asking its leader when that is another node unless
	// forwarded (ElectLeaders).
	ElectPreferred(ctx context.Context, topic string, partition int32, forwarded bool) error
	// JoinNode adds a node to the cluster (BrokerRegistration) and
	// RemoveNode removes one that holds no replica (UnregisterBroker);
	// both on the metadata leader only.
	JoinNode(ctx context.Context, clusterID string, node meta.Member) error
	RemoveNode(ctx context.Context, id int32) error
}
