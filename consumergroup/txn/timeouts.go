package txn

import (
	"context"

	"go.uber.org/zap"
)

// abortTimedOut aborts, with the producer fenced (its epoch bumped), every
// transaction this node coordinates that has been ongoing for longer than
// its timeout (transaction.timeout.ms), then schedules itself again after
// Config.AbortTimedOutInterval.
func (c *Coordinator) abortTimedOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	// Close waits for a check under way (it sets closed under c.mu
	// before waiting, so this Add comes first).
	c.wg.Add(1)
	defer c.wg.Done()
	now := c.now()
	var expired []*metadata
	for _, m := range c.txns {
		if m.state == stateOngoing && !m.pending && now.Sub(m.startTime) > m.timeout {
			expired = append(expired, m)
		}
	}
	for _, m := range expired {
		// persist releases c.mu while it waits: re-check.
		if c.closed || c.txns[m.id] != m || m.state != stateOngoing || m.pending ||
			c.coordinatorLocked(c.partitionFor(m.id)) != 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, completeTimeout)
		if code := c.abortFencing(ctx, m, "transaction timed out"); code != 0 {
			c.logger.Warn("timed-out transaction not aborted; retrying at the next check", zap.String("transactional-id", m.id), zap.Int16("code", code))
		}
		cancel()
	}
	c.abortRuns.Add(1)
	if !c.closed {
		c.abortTimer.Reset(c.cfg.AbortTimedOutInterval)
	}
}

// abortChecks returns how many checks for timed-out transactions ran.
func (c *Coordinator) abortChecks() int64 { return c.abortRuns.Load() }

// removeExpired removes the transactional ids this node coordinates that
// have no transaction under way and were last used longer ago than
// transactional.id.expiration.ms (a tombstone; their next InitProducerId
// gets a new producer id), then schedules itself again after
// Config.RemoveExpiredInterval.
func (c *Coordinator) removeExpired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	// Close waits for a check under way (it sets closed under c.mu
	// before waiting, so this Add comes first).
	c.wg.Add(1)
	defer c.wg.Done()
	now := c.now()
	var expired []*metadata
	for _, m := range c.txns {
		if (m.state == stateEmpty || completes(m.state)) && !m.pending && now.Sub(m.lastUpdate) > c.cfg.IDExpiration {
			expired = append(expired, m)
		}
	}
	for _, m := range expired {
		if c.closed || c.txns[m.id] != m || m.pending || !(m.state == stateEmpty || completes(m.state)) ||
			c.coordinatorLocked(c.partitionFor(m.id)) != 0 {
			continue
		}
		next := m.clone()
		next.state, next.lastUpdate = stateDead, now
		ctx, cancel := context.WithTimeout(c.ctx, completeTimeout)
		if code := c.persist(ctx, m, next); code != 0 {
			c.logger.Warn("expired transactional id not removed; retrying at the next check", zap.String("transactional-id", m.id), zap.Int16("code", code))
		} else {
			c.logger.Info("transactional id expired", zap.String("transactional-id", m.id), zap.Duration("expiration", c.cfg.IDExpiration))
		}
		cancel()
	}
	if !c.closed {
		c.expireTimer.Reset(c.cfg.RemoveExpiredInterval)
	}
}
