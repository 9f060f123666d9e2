package consumergroup

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// loadLed loads, at start, every __consumer_offsets partition this node
// leads already, so that a single node answers its first requests with
// every group loaded. Partitions led later (or not yet ready to serve) are
// loaded when a request first needs them (coordinatorLocked).
func (c *Coordinator) loadLed() error {
	begin := func(p, epoch int32) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.owned[p].Begin(epoch)
		c.owned[p].completions = nil
	}
	return LoadLed(c.partitions, c.self, c.handle, begin, c.loadPartition)
}

// loadPartition rebuilds the groups of partition p, which this node leads
// in epoch, reading it from its log start to its high watermark (on a
// leader that covers every committed record: a partition leader serves
// only once everything before its term is applied) and applying records
// in order. The groups are installed only if the load is still wanted
// (no newer load, not closed) and the node still leads p in epoch;
// otherwise they are dropped and the next request starts over. A group
// stored with members comes back Stable; each member must heartbeat
// within its session timeout, as after a Kafka coordinator failover.
func (c *Coordinator) loadPartition(p int32, h Partition, epoch int32) (err error) {
	began := time.Now()
	groups := make(map[string]*group)
	shares := make(map[string]*shareGroup)
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		o := &c.owned[p]
		if !o.End(epoch) {
			return
		}
		close(c.loadEnded)
		c.loadEnded = make(chan struct{})
		defer func() { o.completions = nil }()
		if !LoadSucceeded(c.logger, OffsetsTopic, p, h, c.self, epoch, c.closed, err) {
			return
		}
		for id, g := range groups {
			c.groups[id] = g
			// The log does not record generations per commit: count
			// rebalances from the one loaded (stuck.go).
			for tp, o := range g.offsets {
				o.movedGeneration = g.generation
				g.offsets[tp] = o
			}
			for _, m := range g.members {
				c.armSession(g, m)
			}
		}
		for id, g := range shares {
			g.stored = true
			c.shareGroups[id] = g
		}
		// Markers committed while the load ran (CompleteTransaction noted
		// them); those the load read already find nothing pending.
		for _, done := range o.completions {
			c.completeTxnLocked(c.groups, p, done.producerID, done.commit)
		}
		o.Install(epoch)
		c.logger.Debug("group partition loaded", zap.Int32("partition", p), zap.Int32("epoch", epoch),
			zap.Int("groups", len(groups)), zap.Int("share-groups", len(shares)), zap.Duration("took", time.Since(began)))
	}()
	stopped := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closed
	}
	err = ReplayLog(h, stopped, func(hdr log.BatchHeader, rec *record.Record) error {
		c.applyLoaded(p, groups, shares, hdr, rec)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s-%d: %w", OffsetsTopic, p, err)
	}
	return nil
}

// applyLoaded applies one record of a load to groups and shares, the
// load's own maps.
// Records of a transactional batch are pending in their producer's
// transaction until its control batch (a COMMIT or ABORT marker) in this
// partition completes them; a producer's transaction still open at the end
// of the load stays pending in the installed groups.
func (c *Coordinator) applyLoaded(p int32, groups map[string]*group, shares map[string]*shareGroup, h log.BatchHeader, rec *record.Record) {
	switch {
	case h.Control():
		// A transaction marker's key: version, then type (0 ABORT, 1
		// COMMIT).
		var k kmsg.ControlRecordKey
		if k.ReadFrom(rec.Key) != nil || k.Type > 1 || !h.Transactional() {
			return
		}
		c.completeTxnLocked(groups, p, h.ProducerID, k.Type == 1)
	case h.Transactional():
		c.applyTxnRecord(groups, h.ProducerID, h.BaseOffset+int64(rec.OffsetDelta), rec.Key, rec.Value)
	case isShareGroupKey(rec.Key):
		c.applyShareRecord(shares, rec.Key, rec.Value)
	default:
		c.applyRecord(groups, h.BaseOffset+int64(rec.OffsetDelta), rec.Key, rec.Value)
	}
}

// applyTxnRecord applies one record of producerID's transactional batch,
// at logOffset, to groups, a load's own map: an offset commit becomes
// pending in the producer's transaction. TxnOffsetCommit writes nothing
// else transactionally; anything else is skipped.
func (c *Coordinator) applyTxnRecord(groups map[string]*group, producerID, logOffset int64, key, value []byte) {
	if len(key) < 2 || value == nil {
		return
	}
	if version := int16(binary.BigEndian.Uint16(key)); version > 1 {
		return
	}
	var k kmsg.OffsetCommitKey
	var v kmsg.OffsetCommitValue
	if k.ReadFrom(key) != nil || v.ReadFrom(value) != nil {
		return
	}
	g := groups[k.Group]
	if g == nil {
		g = newGroup(k.Group, time.UnixMilli(v.CommitTimestamp))
		groups[k.Group] = g
	}
	o := committed{offset: v.Offset, leaderEpoch: v.LeaderEpoch, metadata: v.Metadata, commitTimestamp: v.CommitTimestamp, logOffset: logOffset}
	g.addTxnOffsetLocked(producerID, topicPartition{k.Topic, k.Partition}, o)
}

// applyRecord applies one __consumer_offsets record, at logOffset, to
// groups, a load's own map (not yet shared: no lock).
func (c *Coordinator) applyRecord(groups map[string]*group, logOffset int64, key, value []byte) {
	if len(key) < 2 {
		return
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if k.ReadFrom(key) != nil {
			return
		}
		tp := topicPartition{k.Topic, k.Partition}
		g := groups[k.Group]
		if value == nil {
			if g != nil {
				delete(g.offsets, tp)
				// As OffsetDelete and DeleteGroups drop them.
				g.dropTxnOffsetsLocked(tp)
			}
			return
		}
		var v kmsg.OffsetCommitValue
		if v.ReadFrom(value) != nil {
			return
		}
		if g == nil {
			g = newGroup(k.Group, time.UnixMilli(v.CommitTimestamp))
			groups[k.Group] = g
		}
		o := committed{offset: v.Offset, leaderEpoch: v.LeaderEpoch, metadata: v.Metadata, commitTimestamp: v.CommitTimestamp, movedAt: v.CommitTimestamp, logOffset: logOffset}
		if old, ok := g.offsets[tp]; ok && old.offset == o.offset {
			o.movedAt = old.movedAt
		}
		g.offsets[tp] = o
		if g.state == stateEmpty && time.UnixMilli(v.CommitTimestamp).After(g.emptySince) {
			g.emptySince = time.UnixMilli(v.CommitTimestamp)
		}
	case 2:
		var k kmsg.GroupMetadataKey
		if k.ReadFrom(key) != nil {
			return
		}
		if value == nil {
			delete(groups, k.Group)
			return
		}
		var v kmsg.GroupMetadataValue
		if v.ReadFrom(value) != nil {
			c.logger.Warn("skipping undecodable group metadata", zapGroup(k.Group))
			return
		}
		g := groups[k.Group]
		if g == nil {
			g = newGroup(k.Group, time.UnixMilli(v.CurrentStateTimestamp))
			groups[k.Group] = g
		}
		g.protocolType, g.generation = v.ProtocolType, v.Generation
		g.protocol, g.leader = "", ""
		if v.Protocol != nil {
			g.protocol = *v.Protocol
		}
		if v.Leader != nil {
			g.leader = *v.Leader
		}
		g.members, g.static = map[string]*member{}, map[string]string{}
		for _, vm := range v.Members {
			m := &member{
				id: vm.MemberID, instanceID: vm.InstanceID, clientID: vm.ClientID, host: vm.ClientHost,
				sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
				rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
				protocolType:     v.ProtocolType,
				protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
				assignment:       vm.Assignment,
			}
			c.addMemberLocked(g, m)
		}
		if len(g.members) > 0 {
			g.state = stateStable
		} else {
			g.state = stateEmpty
			g.emptySince = time.UnixMilli(v.CurrentStateTimestamp)
		}
	}
}

// expireOffsets deletes the offsets and metadata of groups that have been
// empty for longer than OffsetsRetention (offsets.retention.minutes, as in
// Kafka 2.1+), then schedules itself again.
func (c *Coordinator) expireOffsets() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	type expired struct {
		id      string
		p       int32
		records []kv
	}
	var gone []expired
	coordinated := make(map[int32]bool, c.partitions)
	for p := int32(0); p < c.partitions; p++ {
		coordinated[p] = c.coordinatorLocked(p) == 0
	}
	for id, g := range c.groups {
		if coordinated[c.partitionFor(id)] && g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 && g.inflight == 0 && len(g.txnOffsets) == 0 && time.Since(g.emptySince) > c.cfg.OffsetsRetention {
			gone = append(gone, expired{id, c.partitionFor(id), c.tombstonesLocked(g)})
		}
	}
	for _, e := range gone {
		// Appended under c.mu: a group of the same name created later
		// writes after these tombstones.
		if _, err := c.appendLocked(e.p, encodeBatch(e.records)); err != nil {
			c.logger.Warn("expire group offsets", zapGroup(e.id), zapErr(err))
			continue
		}
		g := c.groups[e.id]
		g.state = stateDead
		c.stopTimersLocked(g)
		delete(c.groups, e.id)
		c.logger.Info("group offsets expired", zapGroup(e.id), zap.Duration("retention", c.cfg.OffsetsRetention))
	}
	if !c.closed {
		c.expiry = time.AfterFunc(c.cfg.OffsetsRetentionCheckInterval, c.expireOffsets)
	}
	c.mu.Unlock()
}
