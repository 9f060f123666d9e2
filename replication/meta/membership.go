package meta

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
)

// JoinRequest is a node asking to join a running cluster.
type JoinRequest struct {
	// ClusterID is the joining node's Group.ClusterID: "" for a fresh
	// node, else the cluster its data dir belongs to.
	ClusterID string
	Node      Member
}

// Join registers a node and adds it to the metadata group as a voter. Run
// it on the leader (else *NotLeaderError). A node of another cluster is
// refused with kerr.InconsistentClusterID, a node id or Raft address
// already another node's with kerr.DuplicateBrokerRegistration. Joining
// again with the same id and address is a no-op that updates its Kafka
// address, so a retry after a failure is safe.
func (g *Group) Join(ctx context.Context, req JoinRequest) error {
	if _, err := g.Propose(ctx, &RegisterNode{ClusterID: req.ClusterID, Node: req.Node.node()}); err != nil {
		return fmt.Errorf("register node %d: %w", req.Node.ID, err)
	}
	f := g.raft.AddVoter(serverID(req.Node.ID), raft.ServerAddress(req.Node.RaftAddress), 0, g.timeout(ctx))
	if err := g.await(ctx, f); err != nil {
		return fmt.Errorf("add node %d to the metadata group: %w", req.Node.ID, err)
	}
	g.logger.Info("node joined", zap.Int32("joined", req.Node.ID), zap.String("raft-address", req.Node.RaftAddress))
	return nil
}

// Leave marks a node leaving: placement stops choosing it. Moving its
// replicas away (ReassignPartition) comes next, then Remove. Run it on the
// leader.
func (g *Group) Leave(ctx context.Context, id int32) error {
	if _, err := g.Propose(ctx, &MarkNodeLeaving{NodeID: id}); err != nil {
		return fmt.Errorf("mark node %d leaving: %w", id, err)
	}
	return nil
}

// Remove forgets a leaving node that holds no replicas and removes it
// from the metadata group. Run it on the leader. Idempotent: a node
// already forgotten is still removed from the Raft configuration.
func (g *Group) Remove(ctx context.Context, id int32) error {
	if _, err := g.Propose(ctx, &RemoveNode{NodeID: id}); err != nil && !errors.Is(err, kerr.BrokerIDNotRegistered) {
		return fmt.Errorf("remove node %d: %w", id, err)
	}
	f := g.raft.RemoveServer(serverID(id), 0, g.timeout(ctx))
	if err := g.await(ctx, f); err != nil {
		return fmt.Errorf("remove node %d from the metadata group: %w", id, err)
	}
	g.logger.Info("node removed", zap.Int32("removed", id))
	return nil
}

// Voters returns the node ids of the metadata group's voters in the
// latest Raft configuration this node knows.
func (g *Group) Voters() ([]int32, error) {
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, g.translate(err)
	}
	var ids []int32
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		n, err := strconv.ParseInt(string(s.ID), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("meta: Raft server id %q is not a node id", s.ID)
		}
		ids = append(ids, int32(n))
	}
	return ids, nil
}
