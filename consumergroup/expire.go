package consumergroup

import (
	"time"

	"go.uber.org/zap"
)

// expireLoop removes expired offsets every OffsetsRetentionCheckInterval,
// as Kafka's offsets retention check. It ends at Close.
func (c *Coordinator) expireLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.OffsetsRetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.expireOffsets(time.Now())
		}
	}
}

// expireOffsets deletes the offsets whose retention has passed at now
// (KIP-211) and forgets groups left Empty with no offsets:
//
//   - an Empty group with a protocol type: every offset, once the group
//     has been Empty for OffsetsRetention;
//   - a Stable consumer group: offsets of topics no member subscribes to,
//     OffsetsRetention after their commit;
//   - a group without protocol type (offsets committed by admin clients
//     or standalone consumers): each offset OffsetsRetention after its
//     commit.
//
// Groups with commits in flight are left for the next round.
func (c *Coordinator) expireOffsets(now time.Time) {
	retention := c.cfg.OffsetsRetention
	for _, g := range c.snapshot() {
		if c.isLoading(g.id) {
			continue
		}
		g.mu.Lock()
		if g.state != stateDead && g.inflight == 0 {
			g.expire(now, retention)
		}
		g.mu.Unlock()
	}
}

// expire runs one retention check on g; g.mu is held.
func (g *group) expire(now time.Time, retention time.Duration) {
	var expired []topicPartition
	due := func(since time.Time) bool { return !now.Before(since.Add(retention)) }
	switch {
	case g.protocolType != "" && g.state == stateEmpty:
		if due(g.stateTimestamp) {
			expired = g.sortedOffsets()
		}
	case g.protocolType == consumerProtocolType && g.state == stateStable && g.subscribed != nil:
		for _, tp := range g.sortedOffsets() {
			if _, ok := g.subscribed[tp.topic]; !ok && due(time.UnixMilli(g.offsets[tp].commitTimestamp)) {
				expired = append(expired, tp)
			}
		}
	case g.protocolType == "":
		for _, tp := range g.sortedOffsets() {
			if due(time.UnixMilli(g.offsets[tp].commitTimestamp)) {
				expired = append(expired, tp)
			}
		}
	}
	records := make([]record, 0, len(expired)+1)
	for _, tp := range expired {
		records = append(records, record{key: offsetCommitKey(g.id, tp.topic, tp.partition)})
	}
	dies := g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == len(expired)
	if dies && g.hasMetadata {
		records = append(records, record{key: groupMetadataKey(g.id)})
	}
	if len(records) > 0 {
		_, base, err := g.appendRecords(records)
		if err != nil {
			g.logger().Warn("write expired offsets", zap.Error(err))
			return
		}
		for i, tp := range expired {
			g.applyOffset(tp, nil, base+int64(i))
		}
		g.logger().Info("offsets expired", zap.Int("offsets", len(expired)), zap.Bool("group-removed", dies))
	}
	if dies {
		g.kill()
	}
}
