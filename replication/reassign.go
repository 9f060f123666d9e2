package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/meta"
)

const (
	// moveRetry is how often the mover re-examines the partitions being
	// reassigned that this node leads, besides at every metadata change:
	// it picks up a leadership won meanwhile and retries a failed step.
	moveRetry = 500 * time.Millisecond
	// catchUpTimeout bounds one wait for an added replica to catch up;
	// the step is retried after it.
	catchUpTimeout = 30 * time.Second
	// moveStepTimeout bounds each Raft membership change, leadership
	// transfer and completion.
	moveStepTimeout = 10 * time.Second
)

// Reassignment is one partition's reassignment in progress, as
// ListPartitionReassignments reports it: the replicas (target first,
// then those leaving), and those being added and removed.
type Reassignment struct {
	Topic     string
	Partition int32
	Replicas  []int32
	Adding    []int32
	Removing  []int32
}

// PeerClient reaches another node: the metadata leader from a node that
// is not it, a partition's leader from another replica. cmd/sluice
// implements it over the Kafka protocol.
type PeerClient interface {
	// CompleteReassignment asks the metadata leader, the broker
	// controller, to finalise a reassignment whose Raft group now has
	// exactly target as voters (Cluster.CompleteReassignment there).
	CompleteReassignment(ctx context.Context, controller Broker, topic string, topicID [16]byte, partition int32, target []int32) error
	// ElectPreferred asks the partition's leader to hand leadership to
	// the preferred replica (Cluster.ElectPreferred there, not
	// forwarded again).
	ElectPreferred(ctx context.Context, leader Broker, topic string, partition int32) error
	// Join asks the cluster reached at address (any member's Kafka
	// listener) to add this node (Cluster.JoinNode on its controller).
	// clusterID is this node's, "" for a fresh data dir.
	Join(ctx context.Context, address, clusterID string, self meta.Member) error
}

// AlterReassignment starts, changes or, with a nil target, cancels the
// reassignment of one partition (AlterPartitionReassignments). It returns
// once this node's view holds it; the partition's Raft leader then moves
// the data while producers go on. Errors: NOT_CONTROLLER off the
// metadata leader, UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT
// (empty, repeated or unregistered replicas), NO_REASSIGNMENT_IN_PROGRESS
// (cancel of none), INVALID_REPLICATION_FACTOR (another replica count
// while allowRFChange is false, KIP-860), each wrapped with a message.
func (c *Cluster) AlterReassignment(ctx context.Context, topic string, partition int32, target []int32, allowRFChange bool) error {
	if err := c.controller(); err != nil {
		return err
	}
	if !allowRFChange && target != nil {
		s := c.group.State()
		if t, ok := s.Topic(topic); ok && partition >= 0 && int(partition) < len(t.Partitions) {
			if have := len(t.Partitions[partition].Original()); have != len(target) {
				return fmt.Errorf("partition %s-%d has %d replicas, the target %d, and the request does not allow changing the replication factor: %w",
					topic, partition, have, len(target), kerr.InvalidReplicationFactor)
			}
		}
	}
	_, err := c.propose(ctx, &meta.AlterReassignment{Topic: topic, Partition: partition, Target: target})
	return err
}

// Reassignments returns the reassignments in progress, sorted by topic
// then partition (ListPartitionReassignments). Only the metadata leader
// answers (NOT_CONTROLLER elsewhere), from its state, which holds every
// committed change.
func (c *Cluster) Reassignments() ([]Reassignment, error) {
	if err := c.controller(); err != nil {
		return nil, err
	}
	s := c.group.State()
	var out []Reassignment
	for _, ref := range s.Reassigning() {
		mp := s.Topics[ref.Topic].Partitions[ref.Partition]
		out = append(out, Reassignment{Topic: ref.Topic, Partition: ref.Partition,
			Replicas: slices.Clone(mp.Replicas), Adding: slices.Clone(mp.Adding), Removing: slices.Clone(mp.Removing)})
	}
	return out, nil
}

// CompleteReassignment finalises a reassignment on behalf of the
// partition's leader, node from, once its Raft group's voters are
// exactly target. Only the metadata leader does it (NOT_CONTROLLER
// elsewhere); from must be a registered node
// (BROKER_ID_NOT_REGISTERED), and target the reassignment in progress
// (INVALID_REPLICA_ASSIGNMENT, NO_REASSIGNMENT_IN_PROGRESS).
func (c *Cluster) CompleteReassignment(ctx context.Context, from int32, topic string, partition int32, target []int32) error {
	if err := c.controller(); err != nil {
		return err
	}
	if _, ok := c.group.State().Node(from); !ok {
		return fmt.Errorf("node %d is not a member of this cluster: %w", from, kerr.BrokerIDNotRegistered)
	}
	_, err := c.propose(ctx, &meta.CompleteReassignment{Topic: topic, Partition: partition, Target: target})
	return err
}

// serverID is a node's server id in a partition's Raft group.
func serverID(node int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(node))) }

// driveMoves is the mover: the goroutine that, on the Raft leader of each
// partition being reassigned, moves it (move). At every change of the
// view it collects the partitions that may need work (those being
// reassigned, and those whose replica list just changed); while any is
// pending it looks again every moveRetry (to pick up a leadership won
// meanwhile and retry a failed step) and starts one worker per partition
// this node leads that has none running. With nothing pending it only
// waits for the next change: an idle cluster costs nothing. It runs until
// Close.
func (c *Cluster) driveMoves() {
	defer close(c.movesDone)
	var (
		last        *meta.State
		reassigning map[meta.PartitionRef]bool
		pending     = map[meta.PartitionRef]bool{}
	)
	for {
		c.mu.RLock()
		changed, s, closed := c.viewChanged, c.applied, c.closed
		c.mu.RUnlock()
		if closed {
			return
		}
		if s != last {
			reassigning = map[meta.PartitionRef]bool{}
			for _, ref := range s.Reassigning() {
				reassigning[ref] = true
				pending[ref] = true
			}
			for ref := range pending {
				if _, alive := s.TopicByID(ref.TopicID); !alive {
					delete(pending, ref)
				}
			}
			for _, ref := range movedSince(last, s) {
				pending[ref] = true
			}
			last = s
		}
		c.moveMu.Lock()
		for ref := range c.settled {
			if !reassigning[ref] {
				delete(pending, ref)
			}
		}
		clear(c.settled)
		c.moveMu.Unlock()
		for ref := range pending {
			c.startMove(ref)
		}
		var (
			timer *time.Timer
			tick  <-chan time.Time
		)
		if len(pending) > 0 {
			timer = time.NewTimer(moveRetry)
			tick = timer.C
		}
		select {
		case <-changed:
		case <-tick:
		case <-c.moveCtx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if c.moveCtx.Err() != nil {
			return
		}
	}
}

// movedSince returns the partitions of s whose replica lists differ from
// those of prev, or every moved partition when prev is nil: a cancelled
// reassignment leaves replicas in the Raft group that the leader must
// remove, though nothing is in progress any more.
func movedSince(prev, s *meta.State) []meta.PartitionRef {
	var refs []meta.PartitionRef
	for name, t := range s.Topics {
		var old *meta.Topic
		if prev != nil {
			old = prev.Topics[name]
			if old == t {
				continue
			}
		}
		for i, p := range t.Partitions {
			if !p.Moved {
				continue
			}
			same := old != nil && old.ID == t.ID && i < len(old.Partitions) && slices.Equal(old.Partitions[i].Replicas, p.Replicas)
			if !same {
				refs = append(refs, meta.PartitionRef{TopicID: t.ID, Topic: name, Partition: int32(i)})
			}
		}
	}
	return refs
}

// startMove starts a worker moving ref if this node leads its group and
// none runs. A worker that succeeds marks ref settled: a partition not
// being reassigned then needs nothing more. So does a partition this node
// holds no replica of, and one it follows whose Raft configuration lists
// only its replicas (the leader has removed any other).
func (c *Cluster) startMove(ref meta.PartitionRef) {
	c.mu.RLock()
	p := c.replicas[ref]
	c.mu.RUnlock()
	if p == nil || p.group == nil || p.progress == nil {
		c.settle(ref)
		return
	}
	if p.group.Raft().State() != raft.Leader {
		if servers, err := c.servers(p.group.Raft()); err == nil && onlyReplicas(servers, p.replicas) {
			c.settle(ref)
		}
		return
	}
	c.moveMu.Lock()
	defer c.moveMu.Unlock()
	if c.moving[ref] {
		return
	}
	c.moving[ref] = true
	c.moveWG.Add(1)
	go func() {
		defer c.moveWG.Done()
		err := c.move(c.moveCtx, ref, p)
		c.moveMu.Lock()
		delete(c.moving, ref)
		if err == nil {
			c.settled[ref] = true
		}
		c.moveMu.Unlock()
		if err != nil && c.moveCtx.Err() == nil {
			c.logger.Info("reassignment step failed, retrying", zap.String("topic", ref.Topic), zap.Int32("partition", ref.Partition), zap.Error(err))
		}
	}()
}

// settle marks ref as needing nothing more from this node unless it is
// being reassigned.
func (c *Cluster) settle(ref meta.PartitionRef) {
	c.moveMu.Lock()
	c.settled[ref] = true
	c.moveMu.Unlock()
}

// onlyReplicas reports whether every server of a Raft configuration is
// one of replicas.
func onlyReplicas(servers []raft.Server, replicas []int32) bool {
	for _, srv := range servers {
		id, err := strconv.ParseInt(string(srv.ID), 10, 32)
		if err != nil || !slices.Contains(replicas, int32(id)) {
			return false
		}
	}
	return true
}

// move brings partition ref's Raft group in line with the metadata, on
// its leader: every target replica a voter (added as a non-voter, made a
// voter once caught up), leadership handed to a target replica if this
// node is leaving, every other server removed, then the metadata
// finalised. Each step reads the current state first, so a move
// interrupted by a leader change (of the partition or of the metadata)
// resumes where the new leader finds it.
func (c *Cluster) move(ctx context.Context, ref meta.PartitionRef, p *Partition) error {
	s := c.group.State()
	t, ok := s.TopicByID(ref.TopicID)
	if !ok || int(ref.Partition) >= len(t.Partitions) {
		return nil
	}
	mp := t.Partitions[ref.Partition]
	target := mp.Target()
	r := p.group.Raft()
	lg := c.logger.With(zap.String("topic", ref.Topic), zap.Int32("partition", ref.Partition), zap.Int32s("target", target))

	for _, id := range target {
		servers, err := c.servers(r)
		if err != nil {
			return err
		}
		suffrage, in := suffrageOf(servers, serverID(id))
		if in && suffrage == raft.Voter {
			continue
		}
		n, ok := s.Node(id)
		if !ok {
			return fmt.Errorf("target replica %d is not a registered node", id)
		}
		if err := c.addReplica(ctx, p, serverID(id), raft.ServerAddress(n.RaftAddress), in); err != nil {
			return fmt.Errorf("add replica %d: %w", id, err)
		}
		lg.Info("replica added to the Raft group", zap.Int32("added", id))
	}

	if !slices.Contains(target, c.cfg.NodeID) {
		to := target[0]
		n, _ := s.Node(to)
		lg.Info("leader is leaving the partition, handing leadership over", zap.Int32("to", to))
		return c.awaitFuture(ctx, r.LeadershipTransferToServer(serverID(to), raft.ServerAddress(n.RaftAddress)))
	}

	servers, err := c.servers(r)
	if err != nil {
		return err
	}
	for _, srv := range servers {
		id, err := strconv.ParseInt(string(srv.ID), 10, 32)
		if err != nil || slices.Contains(target, int32(id)) {
			continue
		}
		if err := c.awaitFuture(ctx, r.RemoveServer(srv.ID, 0, moveStepTimeout)); err != nil {
			return fmt.Errorf("remove replica %s: %w", srv.ID, err)
		}
		p.progress.untrack(srv.ID)
		lg.Info("replica removed from the Raft group", zap.String("removed", string(srv.ID)))
	}

	if !mp.Reassigning() {
		return nil
	}
	if err := c.finishMove(ctx, ref, target); err != nil {
		return fmt.Errorf("complete the reassignment: %w", err)
	}
	lg.Info("reassignment complete")
	return nil
}

// addReplica adds server id to the group as a non-voter, waits until it
// has stored every entry the leader had when the wait began, then makes
// it a voter: a replica far behind never counts in the quorum, so
// producers do not wait for it. A non-voter some earlier leader added is
// removed and added again first, so that its progress is tracked from
// the start (raft may already pipeline to it, which hides it).
func (c *Cluster) addReplica(ctx context.Context, p *Partition, id raft.ServerID, addr raft.ServerAddress, inConfig bool) error {
	r := p.group.Raft()
	if _, tracked, _ := p.progress.progress(id); !tracked {
		if inConfig {
			if err := c.awaitFuture(ctx, r.RemoveServer(id, 0, moveStepTimeout)); err != nil {
				return err
			}
			inConfig = false
		}
		p.progress.track(id)
	}
	if !inConfig {
		if err := c.awaitFuture(ctx, r.AddNonvoter(id, addr, 0, moveStepTimeout)); err != nil {
			return err
		}
	}
	want := r.LastIndex()
	timer := time.NewTimer(catchUpTimeout)
	defer timer.Stop()
	for {
		match, _, changed := p.progress.progress(id)
		if match >= want {
			break
		}
		c.mu.RLock()
		viewChanged, s := c.viewChanged, c.applied
		c.mu.RUnlock()
		if !c.stillTarget(s, p, id) {
			return fmt.Errorf("replica %s is no longer a target (the reassignment changed)", id)
		}
		select {
		case <-changed:
		case <-viewChanged:
		case <-timer.C:
			return fmt.Errorf("not caught up within %s (at entry %d of %d)", catchUpTimeout, match, want)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := c.awaitFuture(ctx, r.AddVoter(id, addr, 0, moveStepTimeout)); err != nil {
		return err
	}
	p.progress.untrack(id)
	return nil
}

// stillTarget reports whether server id is a target replica of p's
// partition in s.
func (c *Cluster) stillTarget(s *meta.State, p *Partition, id raft.ServerID) bool {
	t, ok := s.Topic(p.Topic)
	if !ok || int(p.Index) >= len(t.Partitions) {
		return false
	}
	for _, r := range t.Partitions[p.Index].Target() {
		if serverID(r) == id {
			return true
		}
	}
	return false
}

// finishMove proposes CompleteReassignment: here on the metadata leader,
// else through the controller client.
func (c *Cluster) finishMove(ctx context.Context, ref meta.PartitionRef, target []int32) error {
	ctx, cancel := context.WithTimeout(ctx, moveStepTimeout)
	defer cancel()
	err := c.CompleteReassignment(ctx, c.cfg.NodeID, ref.Topic, ref.Partition, target)
	var nl *meta.NotLeaderError
	if !errors.As(err, &nl) {
		return err
	}
	if nl.LeaderID < 0 {
		return fmt.Errorf("no metadata leader known: %w", err)
	}
	if c.peerClient == nil {
		return fmt.Errorf("node %d leads the metadata and this node has no way to reach it: %w", nl.LeaderID, err)
	}
	c.mu.RLock()
	n, ok := c.applied.Node(nl.LeaderID)
	c.mu.RUnlock()
	if !ok {
		return fmt.Errorf("metadata leader %d is not in this node's view yet: %w", nl.LeaderID, err)
	}
	return c.peerClient.CompleteReassignment(ctx, Broker{NodeID: n.ID, Host: n.Host, Port: n.Port}, ref.Topic, ref.TopicID, ref.Partition, target)
}

// servers returns the group's latest Raft configuration.
func (c *Cluster) servers(r *raft.Raft) ([]raft.Server, error) {
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// suffrageOf returns id's suffrage in servers and whether it is there.
func suffrageOf(servers []raft.Server, id raft.ServerID) (raft.ServerSuffrage, bool) {
	for _, s := range servers {
		if s.ID == id {
			return s.Suffrage, true
		}
	}
	return 0, false
}

// awaitFuture waits for f or ctx. Raft resolves every future, at the
// latest when the group shuts down; the goroutine waiting on it is
// counted in futureWG, which Close waits for after closing the groups.
func (c *Cluster) awaitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	c.futureWG.Add(1)
	go func() {
		defer c.futureWG.Done()
		done <- f.Error()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
