package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
)

// ElectPreferred hands the leadership of a partition to its preferred
// replica, the first of its replicas (ElectLeaders, type PREFERRED). On
// the partition's leader it transfers Raft leadership
// (LeadershipTransferToServer: the preferred replica is first brought up
// to date, then told to start an election); elsewhere it asks the leader
// through the peer client, unless forwarded is set (the request came from
// another node: it is not passed on again).
//
// Errors, each wrapped with a message: UNKNOWN_TOPIC_OR_PARTITION;
// ELECTION_NOT_NEEDED when the preferred replica leads already;
// PREFERRED_LEADER_NOT_AVAILABLE when it is not a voter of the group yet
// (being added), not in sync, or the transfer failed;
// NOT_LEADER_OR_FOLLOWER when forwarded to a node that does not lead it,
// or when no leader can be reached.
func (c *Cluster) ElectPreferred(ctx context.Context, topic string, partition int32, forwarded bool) error {
	c.mu.RLock()
	t, ok := c.topics[topic]
	c.mu.RUnlock()
	if !ok || partition < 0 || int(partition) >= len(t.partitions) {
		return fmt.Errorf("partition %s-%d does not exist: %w", topic, partition, kerr.UnknownTopicOrPartition)
	}
	p := t.partitions[partition]
	if len(p.replicas) == 0 {
		return fmt.Errorf("partition %s-%d has no replicas: %w", topic, partition, kerr.UnknownTopicOrPartition)
	}
	preferred := p.replicas[0]
	if p.group != nil && p.group.Raft().State() == raft.Leader {
		return c.transferToPreferred(ctx, p, preferred)
	}
	var candidates []int32
	if p.group != nil {
		leader, _ := p.Leader()
		if leader == preferred {
			return fmt.Errorf("partition %s-%d: its preferred replica %d leads it: %w", topic, partition, preferred, kerr.ElectionNotNeeded)
		}
		if leader >= 0 {
			candidates = []int32{leader}
		}
	} else {
		// No replica here, so no view of the leader: ask the replicas.
		candidates = p.replicas
	}
	if forwarded || len(candidates) == 0 || c.peerClient == nil {
		return fmt.Errorf("partition %s-%d: node %d does not lead it and cannot reach its leader: %w", topic, partition, c.cfg.NodeID, kerr.NotLeaderForPartition)
	}
	c.mu.RLock()
	s := c.applied
	c.mu.RUnlock()
	err := fmt.Errorf("partition %s-%d: no leader known: %w", topic, partition, kerr.NotLeaderForPartition)
	for _, id := range candidates {
		n, ok := s.Node(id)
		if !ok {
			continue
		}
		err = c.peerClient.ElectPreferred(ctx, Broker{NodeID: n.ID, Host: n.Host, Port: n.Port}, topic, partition)
		var ke *kerr.Error
		if err != nil && !errors.As(err, &ke) {
			// Not an answer but no answer (node down, timeout): the
			// client may retry once leadership settles.
			err = fmt.Errorf("partition %s-%d: ask node %d: %v: %w", topic, partition, id, err, kerr.NotLeaderForPartition)
		}
		if !errors.Is(err, kerr.NotLeaderForPartition) {
			return err
		}
	}
	return err
}

// transferToPreferred moves the leadership of p, which this node leads,
// to preferred.
func (c *Cluster) transferToPreferred(ctx context.Context, p *Partition, preferred int32) error {
	if preferred == c.cfg.NodeID {
		return fmt.Errorf("partition %s-%d: its preferred replica %d leads it: %w", p.Topic, p.Index, preferred, kerr.ElectionNotNeeded)
	}
	r := p.group.Raft()
	servers, err := c.servers(r)
	if err != nil {
		return fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, err)
	}
	if s, in := suffrageOf(servers, serverID(preferred)); !in || s != raft.Voter {
		return fmt.Errorf("partition %s-%d: preferred replica %d is not a voter of its Raft group yet: %w", p.Topic, p.Index, preferred, kerr.PreferredLeaderNotAvailable)
	}
	inSync := false
	for _, id := range p.InSync() {
		inSync = inSync || id == preferred
	}
	if !inSync {
		return fmt.Errorf("partition %s-%d: preferred replica %d is not in sync: %w", p.Topic, p.Index, preferred, kerr.PreferredLeaderNotAvailable)
	}
	c.mu.RLock()
	n, ok := c.applied.Node(preferred)
	c.mu.RUnlock()
	if !ok {
		return fmt.Errorf("partition %s-%d: preferred replica %d is not a registered node: %w", p.Topic, p.Index, preferred, kerr.PreferredLeaderNotAvailable)
	}
	if err := c.awaitFuture(ctx, r.LeadershipTransferToServer(serverID(preferred), raft.ServerAddress(n.RaftAddress))); err != nil {
		return fmt.Errorf("partition %s-%d: hand leadership to %d: %v: %w", p.Topic, p.Index, preferred, err, kerr.PreferredLeaderNotAvailable)
	}
	c.logger.Info("leadership handed to the preferred replica", zap.String("topic", p.Topic), zap.Int32("partition", p.Index), zap.Int32("preferred", preferred))
	return nil
}

// balanceLeaders is the goroutine of automatic preferred leader election
// (auto.leader.rebalance.enable): every LeaderImbalanceCheckInterval it
// looks at the partitions whose preferred replica is this node and, when
// more than LeaderImbalancePerBrokerPercentage of them are led by another
// node, asks each of their leaders to hand leadership back. Each node
// checks its own share, which it sees exactly (it is a replica of every
// partition it prefers), so no node needs the leaders of the others. It
// runs until Close.
func (c *Cluster) balanceLeaders() {
	defer close(c.balanceDone)
	if !c.cfg.AutoLeaderRebalance {
		return
	}
	ticker := time.NewTicker(c.cfg.LeaderImbalanceCheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			c.restorePreferred(c.moveCtx)
		case <-c.moveCtx.Done():
			return
		}
	}
}

// restorePreferred runs one check of balanceLeaders.
func (c *Cluster) restorePreferred(ctx context.Context) {
	c.mu.RLock()
	var mine []*Partition
	for _, p := range c.replicas {
		if p.group != nil && len(p.replicas) > 1 && p.replicas[0] == c.cfg.NodeID {
			mine = append(mine, p)
		}
	}
	c.mu.RUnlock()
	var elsewhere []*Partition
	for _, p := range mine {
		if leader, _ := p.Leader(); leader >= 0 && leader != c.cfg.NodeID {
			elsewhere = append(elsewhere, p)
		}
	}
	if len(elsewhere) == 0 || 100*len(elsewhere) <= c.cfg.LeaderImbalancePerBrokerPercentage*len(mine) {
		return
	}
	c.logger.Info("leaders imbalanced, restoring preferred leaders", zap.Int("preferred-here", len(mine)), zap.Int("led-elsewhere", len(elsewhere)))
	for _, p := range elsewhere {
		if ctx.Err() != nil {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, moveStepTimeout)
		err := c.ElectPreferred(sctx, p.Topic, p.Index, false)
		cancel()
		if err != nil && !errors.Is(err, kerr.ElectionNotNeeded) {
			c.logger.Debug("preferred leader election", zap.String("topic", p.Topic), zap.Int32("partition", p.Index), zap.Error(err))
		}
	}
}
