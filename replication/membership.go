package replication

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/meta"
)

// joinRetry is the pause between two attempts of a joining node to reach
// the cluster's controller.
const joinRetry = 250 * time.Millisecond

// JoinNode registers a node and adds it to the metadata group as a voter
// (BrokerRegistration from a node started with cluster.join). Only the
// metadata leader does it (NOT_CONTROLLER elsewhere). A node of another
// cluster is INCONSISTENT_CLUSTER_ID, an id or Raft address already
// another node's DUPLICATE_BROKER_REGISTRATION; joining again with the
// same id and address only updates the node's Kafka address.
func (c *Cluster) JoinNode(ctx context.Context, clusterID string, node meta.Member) error {
	if err := c.controller(); err != nil {
		return err
	}
	if node.RaftAddress == "" || node.Host == "" || node.Port <= 0 || node.Port > 65535 {
		return fmt.Errorf("node %d needs a Raft address and a Kafka host:port to join (have %q, %q, %d): %w", node.ID, node.RaftAddress, node.Host, node.Port, kerr.InvalidRequest)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Meta.ProposeTimeout)
		defer cancel()
	}
	return c.group.Join(ctx, meta.JoinRequest{ClusterID: clusterID, Node: node})
}

// RemoveNode removes a node from the cluster (UnregisterBroker): it is
// marked leaving, forgotten, and removed from the metadata group. Only
// the metadata leader does it (NOT_CONTROLLER elsewhere). A node that
// still holds replicas is refused with REASSIGNMENT_IN_PROGRESS (move
// them first: `sluice cluster remove-node` does), an unknown one is
// BROKER_ID_NOT_REGISTERED.
func (c *Cluster) RemoveNode(ctx context.Context, id int32) error {
	if err := c.controller(); err != nil {
		return err
	}
	s := c.group.State()
	if _, ok := s.Node(id); !ok {
		return fmt.Errorf("node %d is not a member of this cluster: %w", id, kerr.BrokerIDNotRegistered)
	}
	if n := s.ReplicasOn(id); n > 0 {
		return fmt.Errorf("node %d still holds replicas of %d partition(s); move them first (sluice cluster remove-node does): %w", id, n, kerr.ReassignmentInProgress)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Meta.ProposeTimeout)
		defer cancel()
	}
	if err := c.group.Leave(ctx, id); err != nil {
		return err
	}
	if err := c.group.Remove(ctx, id); err != nil {
		return err
	}
	c.logger.Info("node removed from the cluster", zap.Int32("removed", id))
	return nil
}

// join asks the cluster at c.cfg.JoinAddress to add this node, until it
// has or ctx ends. A node that has joined before (its data dir names a
// cluster) does not ask again: its Raft state has the group.
func (c *Cluster) join(ctx context.Context) error {
	if c.cfg.JoinAddress == "" || c.group.ClusterID() != "" {
		return nil
	}
	if c.peerClient == nil {
		return fmt.Errorf("cluster.join %s: this node has no client to reach the cluster", c.cfg.JoinAddress)
	}
	self := c.cfg.self()
	for {
		err := c.peerClient.Join(ctx, c.cfg.JoinAddress, c.group.ClusterID(), self)
		if err == nil {
			c.logger.Info("joined the cluster", zap.String("through", c.cfg.JoinAddress))
			return nil
		}
		c.logger.Info("joining the cluster", zap.String("through", c.cfg.JoinAddress), zap.Error(err))
		t := time.NewTimer(joinRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("join the cluster through %s: %w (last: %v)", c.cfg.JoinAddress, ctx.Err(), err)
		}
	}
}
