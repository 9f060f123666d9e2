package sharestate

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
)

// ownership is what this node holds of one __share_group_state
// partition: the leader epoch whose keys are loaded, or a load under way.
type ownership struct {
	// epoch is the leader epoch the partition's keys were loaded in;
	// meaningful when loaded.
	epoch  int32
	loaded bool
	// loading is set while a load runs (for loadingEpoch); requests for
	// the partition's keys answer COORDINATOR_LOAD_IN_PROGRESS.
	loading      bool
	loadingEpoch int32
	// keys are the partition's share-partitions, when loaded.
	keys map[Key]*entry
}

// coordinatorLocked decides whether this node coordinates the keys of
// __share_group_state partition p now, lazily following the partition's
// leadership (c.mu is held):
//   - another node leads it, or none: NOT_COORDINATOR, and what this node
//     held of it is dropped;
//   - this node leads it in the epoch it loaded: nil;
//   - this node leads it in an epoch it has not loaded: what it held is
//     dropped and a load starts; until it ends,
//     COORDINATOR_LOAD_IN_PROGRESS.
func (c *Coordinator) coordinatorLocked(p int32) *kerr.Error {
	h := c.handle(p)
	if c.closed || h == nil || int(p) >= len(c.owned) {
		return kerr.NotCoordinator
	}
	node, epoch := h.Leader()
	o := &c.owned[p]
	if node != c.self {
		if o.loaded {
			c.unloadLocked(p, "leadership moved")
		}
		return kerr.NotCoordinator
	}
	switch {
	case o.loading:
		return kerr.CoordinatorLoadInProgress
	case o.loaded && o.epoch == epoch:
		return nil
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
	return kerr.CoordinatorLoadInProgress
}

// unloadLocked drops every key of partition p. c.mu is held.
func (c *Coordinator) unloadLocked(p int32, reason string) {
	o := &c.owned[p]
	dropped := len(o.keys)
	o.keys, o.loaded = nil, false
	c.logger.Info("share state partition unloaded", zap.Int32("partition", p), zap.Int("share-partitions", dropped), zap.String("reason", reason))
}

// ownedEpochLocked returns the epoch partition p's keys were loaded in,
// false when they are not loaded. c.mu is held.
func (c *Coordinator) ownedEpochLocked(p int32) (int32, bool) {
	if p < 0 || int(p) >= len(c.owned) || !c.owned[p].loaded {
		return 0, false
	}
	return c.owned[p].epoch, true
}
