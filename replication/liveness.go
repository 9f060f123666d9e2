package replication

import (
	"github.com/hashicorp/raft"

	"github.com/sluice-io/sluice/replication/meta"
)

// PeerLiveness is the node-level failure detector the Cluster asks which
// brokers are down (a replication/transport Mux is one). Its methods must
// be safe for concurrent use and must not block.
type PeerLiveness interface {
	// WatchPeer makes the detector watch the node at a Raft address.
	WatchPeer(addr raft.ServerAddress)
	// PeerDown reports whether the detector holds the node at a Raft
	// address down (false for one it never heard of).
	PeerDown(addr raft.ServerAddress) bool
}

// watchBrokersLocked has the failure detector watch every node registered
// in s but this one, so that a dead node is noticed even when this node
// sends it nothing (it leads no group this node follows). Called with
// c.mu held; the detector takes only its own lock.
func (c *Cluster) watchBrokersLocked(s *meta.State) {
	if c.liveness == nil {
		return
	}
	for id, n := range s.Nodes {
		if id != c.cfg.NodeID && n.RaftAddress != "" {
			c.liveness.WatchPeer(raft.ServerAddress(n.RaftAddress))
		}
	}
}

// down reports whether the failure detector holds node n down. This node
// is never down, nor is any node without a detector (a single node, or
// in-memory transports); a node the detector has not judged yet is up.
func (c *Cluster) down(n meta.Node) bool {
	return c.liveness != nil && n.ID != c.cfg.NodeID && n.RaftAddress != "" &&
		c.liveness.PeerDown(raft.ServerAddress(n.RaftAddress))
}

// LiveBrokers returns the brokers of bs that are not Down, in order: the
// brokers Kafka would call unfenced, which Metadata, DescribeCluster and
// FindCoordinator name. The slice is the caller's.
func LiveBrokers(bs []Broker) []Broker {
	live := make([]Broker, 0, len(bs))
	for _, b := range bs {
		if !b.Down {
			live = append(live, b)
		}
	}
	return live
}
