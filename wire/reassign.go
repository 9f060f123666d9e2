package wire

import (
	"context"

	"github.com/sluice-io/sluice/replication"
)

// Reassigner is what the reassignment APIs need of the cluster: each
// method runs on the metadata leader and answers NOT_CONTROLLER (a
// *meta.NotLeaderError) elsewhere.
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
}
