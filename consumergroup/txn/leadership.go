package txn

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup"
)

// ownership is what this node holds of one __transaction_state
// partition: the leader epoch whose ids are loaded, or a load under way.
type ownership struct {
	consumergroup.PartitionLoad
}

// coordinatorLocked decides whether this node coordinates the ids of
// __transaction_state partition p now, lazily following the partition's
// leadership (consumergroup.PartitionLoad.Follow; c.mu is held): 0 when
// it does, NOT_COORDINATOR, or COORDINATOR_LOAD_IN_PROGRESS while the
// load it starts runs.
func (c *Coordinator) coordinatorLocked(p int32) int16 {
	h := c.handle(p)
	if c.closed || h == nil || p < 0 || int(p) >= len(c.owned) {
		return kerr.NotCoordinator.Code
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
	return code
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
	c.owned[p].Drop()
	c.logger.Info("transaction partition unloaded", zap.Int32("partition", p), zap.Int("transactional-ids", dropped), zap.String("reason", reason))
}

// ownedEpochLocked returns the epoch partition p's ids were loaded in,
// false when they are not loaded. c.mu is held.
func (c *Coordinator) ownedEpochLocked(p int32) (int32, bool) {
	if p < 0 || int(p) >= len(c.owned) {
		return 0, false
	}
	return c.owned[p].Loaded()
}
