package consumergroup

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
)

// ownership is what this node holds of one __consumer_offsets partition:
// the leader epoch whose groups are loaded, or a load under way.
type ownership struct {
	PartitionLoad
	// completions are the transaction markers committed in the partition
	// while a load ran (CompleteTransaction), applied when it installs
	// its groups.
	completions []txnCompletion
}

// handle returns the handle of __consumer_offsets partition p, nil when
// the topic is not (yet) in this node's view.
func (c *Coordinator) handle(p int32) Partition {
	t, ok := c.cluster.Topic(OffsetsTopic)
	if !ok || p < 0 || p >= t.PartitionCount() {
		return nil
	}
	return t.Partition(p)
}

// coordinatorLocked decides whether this node coordinates the groups of
// __consumer_offsets partition p now, lazily following the partition's
// leadership (PartitionLoad.Follow; c.mu is held):
//   - another node leads it, or none: NOT_COORDINATOR, and what this node
//     held of it is dropped (its waiting members are answered
//     NOT_COORDINATOR);
//   - this node leads it in the epoch it loaded: 0;
//   - this node leads it in an epoch it has not loaded: what it held is
//     dropped and a load of the partition starts; until it ends,
//     COORDINATOR_LOAD_IN_PROGRESS.
func (c *Coordinator) coordinatorLocked(p int32) int16 {
	h := c.handle(p)
	if c.closed || h == nil || int(p) >= len(c.owned) {
		// Closed: no load may start (Close waits for those under way).
		return kerr.NotCoordinator.Code
	}
	node, epoch := h.Leader()
	o := &c.owned[p]
	code, unload, load := o.Follow(c.self, node, epoch)
	if unload != "" {
		c.unloadLocked(p, unload)
	}
	if load {
		o.completions = nil
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.loadPartition(p, h, epoch)
		}()
	}
	return code
}

// leadsLocked reports whether this node still coordinates g at the epoch
// it loaded g in; a timer checks it before acting on g. c.mu is held.
func (c *Coordinator) leadsLocked(g *group) bool {
	return c.coordinatorLocked(c.partitionFor(g.id)) == 0 && c.groups[g.id] == g
}

// unloadLocked drops every group of partition p: their timers stop and
// members waiting in JoinGroup or SyncGroup are answered NOT_COORDINATOR,
// so they find the new coordinator. c.mu is held.
func (c *Coordinator) unloadLocked(p int32, reason string) {
	dropped := 0
	for id, g := range c.groups {
		if c.partitionFor(id) != p {
			continue
		}
		c.stopTimersLocked(g)
		for _, m := range g.members {
			answerJoin(m, errJoin(kerr.NotCoordinator.Code, m.id))
			answerSync(m, kerr.NotCoordinator.Code, nil)
		}
		g.state = stateDead
		delete(c.groups, id)
		dropped++
	}
	for id, g := range c.shareGroups {
		if c.partitionFor(id) != p {
			continue
		}
		stopShareTimersLocked(g)
		delete(c.shareGroups, id)
		dropped++
	}
	c.owned[p].Drop()
	c.logger.Info("group partition unloaded", zap.Int32("partition", p), zap.Int("groups", dropped), zap.String("reason", reason))
}

// ownedEpochLocked returns the epoch partition p's groups were loaded in,
// false when they are not loaded. c.mu is held.
func (c *Coordinator) ownedEpochLocked(p int32) (int32, bool) {
	if p < 0 || int(p) >= len(c.owned) {
		return 0, false
	}
	return c.owned[p].Loaded()
}

// dropLostLocked drops the groups of every loaded partition this node no
// longer leads in the epoch it loaded, without starting loads. c.mu is
// held.
func (c *Coordinator) dropLostLocked() {
	for p := range c.owned {
		loaded, ok := c.owned[p].Loaded()
		if !ok {
			continue
		}
		h := c.handle(int32(p))
		if h == nil {
			c.unloadLocked(int32(p), "topic gone")
			continue
		}
		if node, epoch := h.Leader(); node != c.self || epoch != loaded {
			c.unloadLocked(int32(p), "leadership moved")
		}
	}
}
