package sharestate

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup"
)

// ownership is what this node holds of one __share_group_state
// partition: the leader epoch whose keys are loaded, or a load under way.
type ownership struct {
	consumergroup.PartitionLoad
	// keys are the partition's share-partitions, when loaded.
	keys map[Key]*entry
}

// coordinatorLocked decides whether this node coordinates the keys of
// __share_group_state partition p now, lazily following the partition's
// leadership (consumergroup.PartitionLoad.Follow; c.mu is held): nil
// when it does, NOT_COORDINATOR, or COORDINATOR_LOAD_IN_PROGRESS while
// the load it starts runs.
func (c *Coordinator) coordinatorLocked(p int32) *kerr.Error {
	h := c.handle(p)
	if c.closed || h == nil || p < 0 || int(p) >= len(c.owned) {
		return kerr.NotCoordinator
	}
	node, epoch := h.Leader()
	code, unload, load := c.owned[p].Follow(c.self, node, epoch)
	if unload != "" {
		c.unloadLocked(p, unload)
	}
	if load {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.loadPartition(p, h, epoch)
		}()
	}
	if code == 0 {
		return nil
	}
	return kerr.ErrorForCode(code).(*kerr.Error)
}

// unloadLocked drops every key of partition p. c.mu is held.
func (c *Coordinator) unloadLocked(p int32, reason string) {
	o := &c.owned[p]
	dropped := len(o.keys)
	o.keys = nil
	o.Drop()
	c.logger.Info("share state partition unloaded", zap.Int32("partition", p), zap.Int("share-partitions", dropped), zap.String("reason", reason))
}

// ownedEpochLocked returns the epoch partition p's keys were loaded in,
// false when they are not loaded. c.mu is held.
func (c *Coordinator) ownedEpochLocked(p int32) (int32, bool) {
	if p < 0 || int(p) >= len(c.owned) {
		return 0, false
	}
	return c.owned[p].Loaded()
}
