package consumergroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
)

// loadReadBytes is how much one read of a partition asks for.
const loadReadBytes = 1 << 20

// loadedGroup accumulates one group's records while a partition loads.
type loadedGroup struct {
	offsets  map[topicPartition]offsetEntry
	metadata *kmsg.GroupMetadataValue // nil: none, or deleted
}

// load reads every partition of __consumer_offsets and builds its groups,
// marking each partition loaded when done. A partition that cannot be
// read is logged and stays loading: its groups answer
// COORDINATOR_LOAD_IN_PROGRESS rather than forget committed offsets.
func (c *Coordinator) load() {
	defer c.wg.Done()
	defer close(c.loadDone)
	for i, p := range c.partitions {
		if c.ctx.Err() != nil {
			return
		}
		start := time.Now()
		groups, records, err := c.readPartition(p)
		if err != nil {
			if c.ctx.Err() == nil {
				c.logger.Error("load partition failed; its groups stay unavailable", zap.Int("partition", i), zap.Error(err))
			}
			continue
		}
		c.install(groups)
		c.loaded[i].Store(true)
		c.logger.Info("partition loaded", zap.Int("partition", i), zap.Int("groups", len(groups)), zap.Int("records", records), zap.Duration("took", time.Since(start)))
	}
}

// readPartition replays p from its log start to its high watermark.
func (c *Coordinator) readPartition(p *replication.Partition) (map[string]*loadedGroup, int, error) {
	groups := make(map[string]*loadedGroup)
	get := func(id string) *loadedGroup {
		lg, ok := groups[id]
		if !ok {
			lg = &loadedGroup{offsets: make(map[topicPartition]offsetEntry)}
			groups[id] = lg
		}
		return lg
	}
	records := 0
	apply := func(offset int64, key, value []byte) error {
		records++
		if len(key) < 2 {
			return nil
		}
		switch version := int16(binary.BigEndian.Uint16(key)); version {
		case 0, 1:
			var k kmsg.OffsetCommitKey
			if err := k.ReadFrom(key); err != nil {
				c.logger.Warn("skipping undecodable offset commit key", zap.Int64("offset", offset), zap.Error(err))
				return nil
			}
			lg := get(k.Group)
			tp := topicPartition{k.Topic, k.Partition}
			if value == nil {
				delete(lg.offsets, tp)
				return nil
			}
			var v kmsg.OffsetCommitValue
			if err := v.ReadFrom(value); err != nil {
				c.logger.Warn("skipping undecodable offset commit", zap.Int64("offset", offset), zap.String("group", k.Group), zap.Error(err))
				return nil
			}
			e := offsetEntry{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitTimestamp: v.CommitTimestamp, logOffset: offset}
			if v.Version >= 3 {
				e.leaderEpoch = v.LeaderEpoch
			}
			lg.offsets[tp] = e
		case 2:
			var k kmsg.GroupMetadataKey
			if err := k.ReadFrom(key); err != nil {
				c.logger.Warn("skipping undecodable group metadata key", zap.Int64("offset", offset), zap.Error(err))
				return nil
			}
			lg := get(k.Group)
			if value == nil {
				lg.metadata = nil
				return nil
			}
			var v kmsg.GroupMetadataValue
			if err := v.ReadFrom(value); err != nil {
				c.logger.Warn("skipping undecodable group metadata", zap.Int64("offset", offset), zap.String("group", k.Group), zap.Error(err))
				return nil
			}
			lg.metadata = &v
		default:
			// KIP-848 and share group records: not ours.
		}
		return nil
	}

	o := p.Offsets()
	next := o.LogStart
	var buf []byte
	for next < o.HighWatermark {
		if c.ctx.Err() != nil {
			return nil, 0, c.ctx.Err()
		}
		res, err := p.Read(buf[:0], partition.ReadRequest{Offset: next, MaxBytes: loadReadBytes, MinOneBatch: true})
		if err != nil {
			return nil, 0, fmt.Errorf("read %s-%d at offset %d: %w", p.Topic, p.Index, next, err)
		}
		buf = res.Records
		if len(buf) == 0 {
			break
		}
		for rest := buf; len(rest) > 0; {
			if len(rest) < 12 {
				return nil, 0, fmt.Errorf("read %s-%d at offset %d: %d trailing bytes", p.Topic, p.Index, next, len(rest))
			}
			size := 12 + int(int32(binary.BigEndian.Uint32(rest[8:])))
			if size < 61 || size > len(rest) {
				return nil, 0, fmt.Errorf("read %s-%d at offset %d: bad batch length", p.Topic, p.Index, next)
			}
			batch := rest[:size]
			rest = rest[size:]
			base := int64(binary.BigEndian.Uint64(batch))
			last := base + int64(int32(binary.BigEndian.Uint32(batch[23:])))
			if last < next {
				continue // the read began with a batch holding next
			}
			if err := eachRecord(batch, func(offset int64, key, value []byte) error {
				if offset < next {
					return nil
				}
				return apply(offset, key, value)
			}); err != nil {
				if errors.Is(err, errUnsupportedBatch) {
					c.logger.Warn("skipping compressed batch", zap.Int64("offset", base))
				} else {
					return nil, 0, fmt.Errorf("decode %s-%d batch at offset %d: %w", p.Topic, p.Index, base, err)
				}
			}
			next = last + 1
		}
	}
	return groups, records, nil
}

// install creates the groups read from a partition. Groups with members
// come back Stable with fresh session timers (as Kafka): members that are
// gone expire and the group rebalances.
func (c *Coordinator) install(loaded map[string]*loadedGroup) {
	for id, lg := range loaded {
		if lg.metadata == nil && len(lg.offsets) == 0 {
			continue
		}
		g := newGroup(c, id)
		g.mu.Lock()
		g.offsets = lg.offsets
		if md := lg.metadata; md != nil {
			g.hasMetadata = true
			g.generation = md.Generation
			g.protocolType = md.ProtocolType
			if md.Protocol != nil {
				g.protocol = *md.Protocol
			}
			if md.Leader != nil {
				g.leader = *md.Leader
			}
			if md.CurrentStateTimestamp > 0 {
				g.stateTimestamp = time.UnixMilli(md.CurrentStateTimestamp)
			}
			for _, mm := range md.Members {
				g.joinCounter++
				m := &member{
					id:               mm.MemberID,
					instanceID:       mm.InstanceID,
					clientID:         mm.ClientID,
					clientHost:       mm.ClientHost,
					protocolType:     md.ProtocolType,
					protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: mm.Subscription}},
					sessionTimeout:   time.Duration(mm.SessionTimeoutMillis) * time.Millisecond,
					rebalanceTimeout: time.Duration(mm.RebalanceTimeoutMillis) * time.Millisecond,
					assignment:       mm.Assignment,
					joinOrder:        g.joinCounter,
				}
				if mm.RebalanceTimeoutMillis < 0 {
					m.rebalanceTimeout = m.sessionTimeout
				}
				g.members[m.id] = m
				if m.instanceID != nil {
					g.static[*m.instanceID] = m.id
				}
			}
			if len(g.members) > 0 {
				g.state = stateStable
				if _, ok := g.members[g.leader]; !ok {
					g.leader = g.sortedMembers()[0].id
				}
				g.computeSubscribed()
				for _, m := range g.members {
					g.scheduleHeartbeat(m)
				}
			} else {
				g.leader = ""
			}
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			g.stopTimers()
			g.mu.Unlock()
			return
		}
		c.groups[id] = g
		c.mu.Unlock()
		g.mu.Unlock()
	}
}
