package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/meta"
	"github.com/sluice-io/sluice/replication/raftgroup"
)

// soloTimeout is the election timeout of a group whose only replica is
// this node: it has nobody to wait for, so it elects itself at once.
const soloTimeout = 20 * time.Millisecond

// groupName is a partition's group id on the node's transport: the
// topic's id, not its name, so a topic recreated under the same name is
// another group.
func groupName(ref meta.PartitionRef) string {
	return fmt.Sprintf("p:%x:%d", ref.TopicID, ref.Partition)
}

// openPartition opens this node's replica of ref and its Raft group. A
// replica of a partition as created (not Moved, not being added) is
// bootstrapped with the partition's replicas (a no-op on a group that
// already has state); any other waits, with no configuration, for the
// leader to add it (AddNonvoter, then AddVoter: reassign.go), and never
// bootstraps one of its own, which would fork the group's log. c.mu is
// held.
func (c *Cluster) openPartition(s *meta.State, ref meta.PartitionRef, mp meta.Partition, cfg partition.Config) (*Partition, error) {
	replicas := mp.Replicas
	dir := c.partitionDir(ref.Topic, ref.Partition)
	r, err := partition.Open(dir, ref.Topic, ref.Partition, cfg, partition.Options{
		Logger:                c.logger.WithOptions(),
		Now:                   c.now,
		FS:                    c.fs,
		ExternalHighWatermark: true,
	})
	if err != nil {
		return nil, err
	}
	var (
		trans    raft.Transport
		progress *progressTransport
	)
	if c.groupTransport != nil {
		inner, err := c.groupTransport(groupName(ref))
		if err != nil {
			_ = r.Close()
			return nil, err
		}
		progress = newProgressTransport(inner)
		trans = progress
	} else {
		if len(replicas) != 1 || replicas[0] != c.cfg.NodeID {
			_ = r.Close()
			return nil, fmt.Errorf("partition %s-%d has replicas %v: a cluster of several nodes needs raft.listen", ref.Topic, ref.Partition, replicas)
		}
		_, trans = raft.NewInmemTransport("")
	}
	gcfg := c.cfg.PartitionRaft
	if len(replicas) == 1 {
		gcfg.HeartbeatTimeout, gcfg.ElectionTimeout, gcfg.LeaderLeaseTimeout = soloTimeout, soloTimeout, soloTimeout/2
	}
	g, err := raftgroup.Open(dir, r, gcfg, raftgroup.Options{
		ID:           raft.ServerID(strconv.Itoa(int(c.cfg.NodeID))),
		Transport:    trans,
		SyncObserver: c.observeGroupSync,
		FS:           c.fs,
		Admit:        c.space.admit,
		OnLead:       func(epoch int32) { c.reporter.add(ref, c.cfg.NodeID, epoch) },
		Logger:       c.logger.With(zap.String("topic", ref.Topic), zap.Int32("partition", ref.Partition)),
	})
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	servers := make([]raft.Server, 0, len(replicas))
	for _, id := range replicas {
		addr := trans.LocalAddr()
		if id != c.cfg.NodeID {
			n, ok := s.Node(id)
			if !ok {
				_ = g.Close()
				_ = r.Close()
				return nil, fmt.Errorf("partition %s-%d: replica on unknown node %d", ref.Topic, ref.Partition, id)
			}
			addr = raft.ServerAddress(n.RaftAddress)
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(strconv.Itoa(int(id))), Address: addr})
	}
	if !mp.Moved && !slices.Contains(mp.Adding, c.cfg.NodeID) {
		if err := g.Bootstrap(servers); err != nil {
			_ = g.Close()
			_ = r.Close()
			return nil, fmt.Errorf("bootstrap the Raft group of %s-%d: %w", ref.Topic, ref.Partition, err)
		}
	}
	if len(replicas) > 1 {
		// Followers catching up read the batches of the Raft window as
		// entries: retention and compaction must leave them whole. A
		// group alone has no follower to wait for.
		r.SetCleanFloor(g.FirstOffset)
	}
	return &Partition{Topic: ref.Topic, Index: ref.Partition, replica: r, group: g, progress: progress, replicas: replicas, self: c.cfg.NodeID}, nil
}

// closeGroup closes the partition's Raft group, if any, handing its
// leadership to another replica first.
func (p *Partition) closeGroup() error {
	if p.group == nil {
		return nil
	}
	return p.group.Close()
}

// closeReplica closes the group, then the replica.
func (p *Partition) closeReplica() error {
	return errors.Join(p.closeGroup(), p.replica.Close())
}

// waitLocalLeaders waits, within ctx (or the partition Raft election
// timeout times 20 without a deadline), until every open group of refs
// (all open groups when refs is nil) whose only replica is this node
// leads with every entry applied. Groups with other replicas elect on
// their own time; clients retry on NOT_LEADER_OR_FOLLOWER meanwhile.
func (c *Cluster) waitLocalLeaders(ctx context.Context, refs []meta.PartitionRef) error {
	c.mu.RLock()
	var groups []*raftgroup.Group
	pick := func(p *Partition) {
		if p != nil && p.group != nil && len(p.replicas) == 1 {
			groups = append(groups, p.group)
		}
	}
	if refs == nil {
		for _, p := range c.replicas {
			pick(p)
		}
	} else {
		for _, ref := range refs {
			pick(c.replicas[ref])
		}
	}
	c.mu.RUnlock()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 20*c.cfg.PartitionRaft.ElectionTimeout)
		defer cancel()
	}
	for _, g := range groups {
		for !g.IsLeader() {
			changed := g.Changed()
			if g.IsLeader() {
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return fmt.Errorf("wait for this node to lead its partitions: %w", ctx.Err())
			}
		}
	}
	return nil
}
