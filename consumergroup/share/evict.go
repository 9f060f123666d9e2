package share

import (
	"time"

	"go.uber.org/zap"
)

// Eviction of idle share-partitions: a share-partition is made on first
// use and would otherwise stay in memory for as long as this node leads
// its data partition, one per share group ever served, so a broker serving
// many short-lived groups would grow without bound. One unused for
// Config.IdleTimeout, holding no acquired record and no change not yet
// stored, is dropped: everything it knows is in the stored state, which
// its next use reads again (as after a failover, with nothing acquired to
// lose).

// evictLoop evicts idle share-partitions every evictInterval until Close.
func (m *Manager) evictLoop() {
	defer m.wg.Done()
	ticker := time.NewTicker(evictInterval(m.cfg.IdleTimeout))
	defer ticker.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-ticker.C:
			if n := m.evictIdle(); n > 0 {
				m.logger.Debug("idle share-partitions evicted", zap.Int("evicted", n))
			}
		}
	}
}

// evictInterval is how often idle share-partitions are looked for: a
// quarter of the idle timeout, between 1 s and 1 min, so one is evicted
// at most a quarter (or a minute) late.
func evictInterval(idle time.Duration) time.Duration {
	return min(max(idle/4, time.Second), time.Minute)
}

// evictIdle drops the share-partitions idle for Config.IdleTimeout (at
// m.now()) and forgets the long-poll channels of share groups left with
// none, closing them (a waiter wakes and acquires as usual). It returns
// how many share-partitions it dropped.
func (m *Manager) evictIdle() int {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0
	}
	all := make([]*sharePartition, 0, len(m.partitions))
	for _, sp := range m.partitions {
		all = append(all, sp)
	}
	m.mu.Unlock()
	now := m.now()
	evicted := 0
	for _, sp := range all {
		// A share-partition whose lock is held is in use (a request,
		// a load, a lock expiry): not idle.
		if !sp.mu.TryLock() {
			continue
		}
		if sp.idleLocked(now, m.cfg.IdleTimeout) {
			m.dropLocked(sp)
			evicted++
		}
		sp.mu.Unlock()
	}
	m.mu.Lock()
	groups := make(map[string]bool, len(m.partitions))
	for key := range m.partitions {
		groups[key.Group] = true
	}
	for group, ch := range m.changed {
		if !groups[group] {
			close(ch)
			delete(m.changed, group)
		}
	}
	m.mu.Unlock()
	return evicted
}

// idleLocked reports whether sp (held locked) may be evicted at now: not
// used for idle, no acquired record (held dead letters included), no
// state write in flight and no change waiting for one.
func (sp *sharePartition) idleLocked(now time.Time, idle time.Duration) bool {
	return !sp.dropped && sp.state.acquired == 0 && sp.writing == nil && len(sp.unwritten) == 0 &&
		sp.written == sp.changed && now.Sub(sp.used) >= idle
}
