package consumergroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
)

// load rebuilds every group from __consumer_offsets, reading each partition
// from its log start to its high watermark and applying records in order.
// A group whose stored metadata has members comes back Stable with them;
// each must heartbeat within its session timeout, as after a Kafka
// coordinator failover.
func (c *Coordinator) load() error {
	for p := int32(0); p < c.partitions; p++ {
		part, err := c.cluster.Partition(OffsetsTopic, p)
		if errors.Is(err, kerr.NotLeaderForPartition) {
			// Held by another node (a cluster whose partitions are not
			// replicated yet): its coordinator is there.
			continue
		}
		if err != nil {
			return err
		}
		offset := part.Offsets().LogStart
		for {
			rr, err := part.Read(nil, partition.ReadRequest{Offset: offset, MaxBytes: 1 << 20, MinOneBatch: true})
			if errors.Is(err, kerr.NotLeaderForPartition) && offset == part.Offsets().LogStart {
				// Not led here (yet): its coordinator is its leader.
				break
			}
			if err != nil {
				return fmt.Errorf("read %s-%d at %d: %w", OffsetsTopic, p, offset, err)
			}
			if len(rr.Records) == 0 {
				break
			}
			next, err := c.applyBatches(rr.Records)
			if err != nil {
				return fmt.Errorf("%s-%d at %d: %w", OffsetsTopic, p, offset, err)
			}
			if next <= offset {
				break
			}
			offset = next
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.groups {
		for _, m := range g.members {
			c.armSession(g, m)
		}
	}
	return nil
}

// applyBatches applies every record of the batches in b and returns the
// offset after the last batch. A trailing partial batch is ignored.
func (c *Coordinator) applyBatches(b []byte) (int64, error) {
	var next int64
	for len(b) > 0 {
		h, err := log.ParseBatchHeader(b)
		if errors.Is(err, log.ErrShortBatch) || err == nil && h.Size() > len(b) {
			break
		}
		if err != nil {
			return next, fmt.Errorf("decode batch: %w", err)
		}
		batch := b[:h.Size()]
		b = b[h.Size():]
		next = h.NextOffset()
		if h.Control() {
			continue
		}
		_, it, err := record.Records(batch, partition.MaxDecompressedBytes)
		if err != nil {
			return next, err
		}
		for it.Next() {
			rec := it.Record()
			c.applyRecord(rec.Key, rec.Value)
		}
		if err := it.Err(); err != nil {
			return next, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
	}
	return next, nil
}

// applyRecord applies one __consumer_offsets record to the in-memory state.
func (c *Coordinator) applyRecord(key, value []byte) {
	if len(key) < 2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if k.ReadFrom(key) != nil {
			return
		}
		tp := topicPartition{k.Topic, k.Partition}
		g := c.groups[k.Group]
		if value == nil {
			if g != nil {
				delete(g.offsets, tp)
			}
			return
		}
		var v kmsg.OffsetCommitValue
		if v.ReadFrom(value) != nil {
			return
		}
		if g == nil {
			g = newGroup(k.Group, time.UnixMilli(v.CommitTimestamp))
			c.groups[k.Group] = g
		}
		g.offsets[tp] = committed{offset: v.Offset, leaderEpoch: v.LeaderEpoch, metadata: v.Metadata, commitTimestamp: v.CommitTimestamp}
		if g.state == stateEmpty && time.UnixMilli(v.CommitTimestamp).After(g.emptySince) {
			g.emptySince = time.UnixMilli(v.CommitTimestamp)
		}
	case 2:
		var k kmsg.GroupMetadataKey
		if k.ReadFrom(key) != nil {
			return
		}
		if value == nil {
			delete(c.groups, k.Group)
			return
		}
		var v kmsg.GroupMetadataValue
		if v.ReadFrom(value) != nil {
			c.logger.Warn("skipping undecodable group metadata", zapGroup(k.Group))
			return
		}
		g := c.groups[k.Group]
		if g == nil {
			g = newGroup(k.Group, time.UnixMilli(v.CurrentStateTimestamp))
			c.groups[k.Group] = g
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
	for id, g := range c.groups {
		if g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 && g.inflight == 0 && time.Since(g.emptySince) > c.cfg.OffsetsRetention {
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
