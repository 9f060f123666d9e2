package replication

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/configs"
	"github.com/sluice-io/sluice/replication/meta"
)

// react is the goroutine that makes this node follow the metadata: at
// every applied change it brings the view and the local replicas in line
// with the new state (applyLocked). It runs until Close.
func (c *Cluster) react() {
	defer close(c.reacted)
	for {
		changed := c.group.Changed()
		s := c.group.State()
		c.mu.Lock()
		if !c.closed {
			c.applyLocked(s)
		}
		c.mu.Unlock()
		select {
		case <-changed:
		case <-c.stopReact:
			return
		}
	}
}

// applyLocked makes s the state this node's view reflects: replicas no
// longer assigned here are closed (deleted when their topic is gone),
// newly assigned ones opened, replicas whose resolved config changed get
// SetConfig, the topic maps are rebuilt and the cleaner's schedule
// updated; waiters of waitView wake. c.mu must be held exclusively.
//
// Failures to open, close or delete a replica are logged: the state is
// the truth and cannot be refused here. A replica that failed to open is
// retried at the next change.
func (c *Cluster) applyLocked(s *meta.State) {
	if s == c.applied {
		return
	}
	// The first view, applied by Open, opens what already exists: its
	// topics are counted in "cluster open", not logged one by one.
	opening := c.applied.Version == 0
	effective := c.effectiveOf(s)
	scheduleChanged := effective.Cleaner != c.effective.Cleaner
	c.effective = effective
	c.space.setMinFree(effective.MinFreeBytes)

	want := make(map[meta.PartitionRef]bool)
	for _, ref := range s.Assigned(c.cfg.NodeID) {
		want[ref] = true
	}
	for ref, p := range c.replicas {
		if want[ref] {
			continue
		}
		delete(c.replicas, ref)
		if _, alive := s.TopicByID(ref.TopicID); alive {
			// Moved away (a completed reassignment): the other replicas
			// hold the data and this node is out of the Raft group.
			c.logger.Info("replica moved away, deleting it", zap.String("topic", ref.Topic), zap.Int32("partition", ref.Partition))
		}
		if err := p.closeGroup(); err != nil {
			c.logger.Warn("close the Raft group of a deleted partition", zap.String("topic", ref.Topic), zap.Int32("partition", ref.Partition), zap.Error(err))
		}
		if err := p.replica.Delete(); err != nil {
			c.logger.Warn("delete partition data", zap.String("topic", ref.Topic), zap.Int32("partition", ref.Partition), zap.Error(err))
		}
	}

	topics := make(map[string]*Topic, len(s.Topics))
	byID := make(map[[16]byte]*Topic, len(s.Topics))
	for name, mt := range s.Topics {
		cfg, err := configs.ResolveTopic(effective.Partition, mt.Configs)
		if err != nil {
			c.logger.Warn("stored topic configs do not resolve; using the broker defaults", zap.String("topic", name), zap.Error(err))
			cfg = effective.Partition
		}
		prev := c.topics[name]
		if prev != nil && prev.source == mt && prev.config == cfg && prev.complete {
			topics[name], byID[prev.id] = prev, prev
			continue
		}
		t := &Topic{name: name, id: mt.ID, internal: mt.Internal, overrides: mt.Configs, config: cfg, source: mt, complete: true,
			partitions: make([]*Partition, len(mt.Partitions))}
		for i := range mt.Partitions {
			index := int32(i)
			ref := meta.PartitionRef{TopicID: mt.ID, Topic: name, Partition: index}
			p, open := c.replicas[ref]
			switch {
			case open:
				if replicas := mt.Partitions[i].Replicas; !slices.Equal(p.replicas, replicas) {
					// A reassignment changed the replica list: a new
					// handle over the same replica and group, so readers
					// of the old Topic keep a consistent one.
					p = &Partition{Topic: name, Index: index, replica: p.replica, group: p.group, progress: p.progress, replicas: replicas, self: c.cfg.NodeID}
					c.replicas[ref] = p
				}
				if p.replica.Config() != cfg {
					if err := p.replica.SetConfig(cfg); err != nil {
						c.logger.Warn("apply config to replica", zap.String("topic", name), zap.Int32("partition", index), zap.Error(err))
					}
				}
			case want[ref]:
				replicas := mt.Partitions[i].Replicas
				op, err := c.openPartition(s, ref, mt.Partitions[i], cfg)
				if err != nil {
					c.logger.Error("open replica", zap.String("topic", name), zap.Int32("partition", index), zap.Error(err))
					p, t.complete = &Partition{Topic: name, Index: index, replicas: replicas, self: c.cfg.NodeID}, false
					break
				}
				p = op
				c.replicas[ref] = p
			default:
				p = &Partition{Topic: name, Index: index, replicas: mt.Partitions[i].Replicas, self: c.cfg.NodeID}
				if leader, epoch, ok := mt.Partitions[i].RecordedLeader(); ok {
					p.recordedLeader, p.recordedEpoch = leader, epoch
				}
			}
			t.partitions[i] = p
		}
		topics[name], byID[t.id] = t, t
	}
	for name, t := range topics {
		if prev := c.topics[name]; (prev == nil || prev.id != t.id) && !opening {
			c.logger.Info("topic created", zap.String("topic", name), zap.Int32("partitions", t.PartitionCount()))
		}
	}
	for name, prev := range c.topics {
		if t := topics[name]; t == nil || t.id != prev.id {
			c.logger.Info("topic deleted", zap.String("topic", name))
		}
	}
	c.topics, c.topicsByID = topics, byID
	c.applied = s
	c.watchBrokersLocked(s)
	c.quotas.Store(&s.Quotas)
	c.groupConfigs.Store(&s.GroupConfigs)
	close(c.viewChanged)
	c.viewChanged = make(chan struct{})
	if scheduleChanged && c.cleaner != nil {
		c.cleaner.SetConfig(effective.Cleaner)
	}
}

// layersOf returns the broker config layers in force in s for this node.
func (c *Cluster) layersOf(s *meta.State) configs.Layers {
	return configs.Layers{Static: c.cfg.broker(), Node: s.BrokerConfigsOf(c.cfg.NodeID), ClusterDefault: s.Brokers.Default}
}

// effectiveOf returns the broker config in force in s; dynamic configs
// that do not give a valid config are ignored with a warning.
func (c *Cluster) effectiveOf(s *meta.State) configs.Broker {
	effective := c.layersOf(s).Effective()
	if err := effective.Validate(); err != nil {
		c.logger.Warn("ignoring stored dynamic broker configs", zap.Error(err))
		return c.cfg.broker()
	}
	return effective
}

// waitView waits until this node's view reflects metadata version, so an
// operation returns only once its effect is visible here. Without a
// deadline in ctx it waits at most Meta.ProposeTimeout.
func (c *Cluster) waitView(ctx context.Context, version uint64) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Meta.ProposeTimeout)
		defer cancel()
	}
	for {
		c.mu.RLock()
		ch, have, closed := c.viewChanged, c.applied.Version, c.closed
		c.mu.RUnlock()
		switch {
		case have >= version:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("replication: wait for metadata version %d here (have %d): %w", version, have, ctx.Err())
		}
	}
}

// controller returns nil on the metadata leader, else the
// *meta.NotLeaderError (NOT_CONTROLLER) naming it. Admin operations check
// it first, so they validate against the leader's state.
func (c *Cluster) controller() error {
	if c.group.IsLeader() {
		return nil
	}
	id, addr := c.group.Leader()
	if id == c.cfg.NodeID {
		id, addr = -1, ""
	}
	return &meta.NotLeaderError{LeaderID: id, LeaderAddress: addr}
}

// propose proposes cmd to the metadata group and waits until this node's
// view reflects it. A refused command's error is its Result.Err (a
// wrapped *kerr.Error); on a follower it is a *meta.NotLeaderError,
// which unwraps to kerr.NotController. Without a deadline in ctx it waits
// at most Meta.ProposeTimeout for each step.
func (c *Cluster) propose(ctx context.Context, cmd meta.Command) (meta.Result, error) {
	if c.isClosed() {
		return meta.Result{}, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Meta.ProposeTimeout)
		defer cancel()
	}
	res, err := c.group.Propose(ctx, cmd)
	if errors.Is(err, meta.ErrClosed) {
		return res, ErrClosed
	}
	if err != nil {
		return res, err
	}
	return res, c.waitView(ctx, res.Version)
}

// removeOrphans deletes partition directories that no replica of this
// node uses: the leftovers of a delete or a move interrupted by a crash.
// Only a state known to be complete (after a barrier on the leader) may
// decide it.
func (c *Cluster) removeOrphans() error {
	names, err := c.fs.ReadDir(c.topicsDir())
	if err != nil {
		return fmt.Errorf("list %s: %w", c.topicsDir(), err)
	}
	c.mu.RLock()
	used := make(map[string]bool, len(c.replicas))
	for ref := range c.replicas {
		used[ref.Topic+"-"+strconv.Itoa(int(ref.Partition))] = true
	}
	want := make(map[string]bool)
	for _, ref := range c.applied.Assigned(c.cfg.NodeID) {
		want[ref.Topic+"-"+strconv.Itoa(int(ref.Partition))] = true
	}
	c.mu.RUnlock()
	for _, name := range names {
		if used[name] || want[name] {
			continue
		}
		c.logger.Warn("removing partition directory of no replica on this node", zap.String("dir", name))
		if err := c.fs.RemoveAll(path.Join(c.topicsDir(), name)); err != nil {
			return fmt.Errorf("remove orphan %s: %w", name, err)
		}
	}
	return nil
}

// WaitView waits until cond, evaluated on this node's view after each
// change, holds: a node that forwarded an admin request to the metadata
// leader waits so for the change to be visible here too. cond runs
// without the view's lock held and may call Topic, TopicByID and the
// like. Without a deadline in ctx it waits at most Meta.ProposeTimeout;
// it returns ctx's error (wrapped) or ErrClosed.
func (c *Cluster) WaitView(ctx context.Context, cond func() bool) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Meta.ProposeTimeout)
		defer cancel()
	}
	for {
		c.mu.RLock()
		ch, closed := c.viewChanged, c.closed
		c.mu.RUnlock()
		if closed {
			return ErrClosed
		}
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("replication: wait for a metadata change here: %w", ctx.Err())
		}
	}
}
