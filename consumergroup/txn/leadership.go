package txn

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
)

// ownership is what this node holds of one __transaction_state
// partition: the leader epoch whose ids are loaded, or a load under way.
type ownership struct {
	// epoch is the leader epoch the partition's ids were loaded in (the
	// coordinator epoch of its markers); meaningful when loaded.
	epoch  int32
	loaded bool
	// loading is set while a load runs (for loadingEpoch); requests for
	// the partition's ids answer COORDINATOR_LOAD_IN_PROGRESS.
	loading      bool
	loadingEpoch int32
}

// coordinatorLocked decides whether this node coordinates the ids of
// __transaction_state partition p now, lazily following the partition's
// leadership (c.mu is held):
//   - another node leads it, or none: NOT_COORDINATOR, and what this node
//     held of it is dropped;
//   - this node leads it in the epoch it loaded: 0;
//   - this node leads it in an epoch it has not loaded: what it held is
//     dropped and a load starts; until it ends,
//     COORDINATOR_LOAD_IN_PROGRESS.
func (c *Coordinator) coordinatorLocked(p int32) int16 {
	h := c.handle(p)
	if c.closed || h == nil || int(p) >= len(c.owned) {
		return kerr.NotCoordinator.Code
	}
	node, epoch := h.Leader()
	o := &c.owned[p]
	if node != c.self {
		if o.loaded {
			c.unloadLocked(p, "leadership moved")
		}
		return kerr.NotCoordinator.Code
	}
	switch {
	case o.loading:
		return kerr.CoordinatorLoadInProgress.Code
	case o.loaded && o.epoch == epoch:
		return 0
	}
	if o.loaded {
		c.unloadLocked(p, "leader epoch changed")
	}
	o.loading, o.loadingEpoch = true, epoch
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.loadPartition(p, h, epoch)
	}()
	return kerr.CoordinatorLoadInProgress.Code
}

// leadsLocked reports whether this node still coordinates partition p in
// epoch; marker senders and timers check it before acting. c.mu is held.
func (c *Coordinator) leadsLocked(p, epoch int32) bool {
	if c.coordinatorLocked(p) != 0 {
		return false
	}
	e, ok := c.ownedEpochLocked(p)
	return ok && e == epoch
}

// unloadLocked drops every transactional id of partition p (marker
// senders for them stop at their next check). c.mu is held.
func (c *Coordinator) unloadLocked(p int32, reason string) {
	dropped := 0
	for id := range c.txns {
		if c.partitionFor(id) == p {
			delete(c.txns, id)
			dropped++
		}
	}
	c.owned[p].loaded = false
	c.logger.Info("transaction partition unloaded", zap.Int32("partition", p), zap.Int("transactional-ids", dropped), zap.String("reason", reason))
}

// ownedEpochLocked returns the epoch partition p's ids were loaded in,
// false when they are not loaded. c.mu is held.
func (c *Coordinator) ownedEpochLocked(p int32) (int32, bool) {
	if p < 0 || int(p) >= len(c.owned) || !c.owned[p].loaded {
		return 0, false
	}
	return c.owned[p].epoch, true
}
