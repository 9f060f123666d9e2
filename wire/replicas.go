package wire

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
)

// What Produce and Fetch say about a partition's replicas: the current
// leader in a NOT_LEADER_OR_FOLLOWER answer (KIP-951), so a client moves to
// it without a Metadata round trip, and the min.insync.replicas check of
// acks=all produce.

// configuredPartition is a Partition that reports the partition config in
// force (*replication.Partition does). Produce reads min.insync.replicas
// from it; a Partition without it has no minimum.
type configuredPartition interface {
	Config() partition.Config
}

var _ configuredPartition = (*replication.Partition)(nil)

// checkMinInSync returns NOT_ENOUGH_REPLICAS when fewer of p's replicas
// are in sync (InSync, as its leader sees them) than its
// min.insync.replicas asks for. Produce calls it for acks=all only, before
// the append, so a refused batch is not stored. A follower reports every
// replica in sync; its Append answers NOT_LEADER_OR_FOLLOWER instead.
func checkMinInSync(p Partition) error {
	c, ok := p.(configuredPartition)
	if !ok {
		return nil
	}
	minInSync := c.Config().MinInSyncReplicas
	if minInSync <= 1 {
		return nil // the leader itself is always in sync
	}
	if n := len(p.InSync()); n < minInSync {
		return fmt.Errorf("%d of the partition's replicas are in sync, min.insync.replicas is %d: retry later, or lower min.insync.replicas or produce with acks=1: %w",
			n, minInSync, kerr.NotEnoughReplicas)
	}
	return nil
}

// currentLeader returns the leader a response with error code for p
// names (KIP-951): ok only when code is NOT_LEADER_OR_FOLLOWER and p
// knows its leader and epoch. A node holding no replica of p only guesses
// the leader (epoch -1) and names none, so the client asks Metadata.
func currentLeader(p Partition, code int16) (node, epoch int32, ok bool) {
	if p == nil || code != kerr.NotLeaderForPartition.Code {
		return -1, -1, false
	}
	node, epoch = p.Leader()
	if node < 0 || epoch < 0 {
		return -1, -1, false
	}
	return node, epoch, true
}

// endpoints returns the brokers among nodes (duplicates allowed), by id:
// the NodeEndpoints of a response whose partitions name them as their
// current leader. A node the cluster does not list is left out.
func (s *Server) endpoints(nodes []int32) []replication.Broker {
	if len(nodes) == 0 {
		return nil
	}
	var out []replication.Broker
	for _, b := range s.cluster.Brokers() {
		if slices.Contains(nodes, b.NodeID) {
			out = append(out, b)
		}
	}
	return out
}
