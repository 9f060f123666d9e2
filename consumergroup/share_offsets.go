package consumergroup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// errNoPersister is the error of the share offset APIs when no
// share-partition state store is wired (Options.SharePersister).
var errNoPersister = fmt.Errorf("consumergroup: no share-partition state store on this node: %w", kerr.CoordinatorNotAvailable)

// shareTarget is one share-partition an offsets request names, or the
// error that it cannot be.
type shareTarget struct {
	topic     string
	id        [16]byte
	partition int32
	code      int16
	message   string
	// missing is set on a partition that cannot have state (no such
	// group, topic or partition): described with start offset -1.
	missing bool
}

// DescribeShareGroupOffsets returns, per share group, the start offset
// (SPSO), leader epoch and (v1) lag (shareLag) of each share-partition
// from its durable state (Persister.ReadSummary): of the named topics' partitions, or, when a
// group names no topics (null), of every partition of every topic the
// group was ever assigned. A partition without state has start offset -1,
// and so has one of a topic that does not exist or of a group that does
// not exist, as in Kafka (absence of data, not an error). Errors: per
// group NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, INVALID_GROUP_ID,
// GROUP_ID_NOT_FOUND (a classic group's id); per partition the state
// store's errors (COORDINATOR_NOT_AVAILABLE when none is wired).
func (c *Coordinator) DescribeShareGroupOffsets(ctx context.Context, req *kmsg.DescribeShareGroupOffsetsRequest) *kmsg.DescribeShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	for _, rg := range req.Groups {
		dg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		dg.GroupID = rg.GroupID
		targets, code, msg := c.describeTargets(rg)
		if code != 0 {
			dg.ErrorCode, dg.ErrorMessage = code, optional(msg)
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		// The summaries are read in parallel, then laid out in order.
		parts := make([]kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition, len(targets))
		store := c.persister()
		eachParallel(len(targets), func(i int) {
			t := targets[i]
			dp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
			dp.Partition, dp.StartOffset, dp.LeaderEpoch, dp.Lag = t.partition, -1, -1, -1
			switch {
			case t.missing:
			case store == nil:
				dp.ErrorCode, dp.ErrorMessage = kerr.CoordinatorNotAvailable.Code, optional(errNoPersister.Error())
			default:
				sum, err := store.ReadSummary(ctx, ShareStateKey{Group: rg.GroupID, TopicID: t.id, Partition: t.partition})
				switch {
				case err != nil:
					dp.ErrorCode, dp.ErrorMessage = persisterErrorCode(err), optional(err.Error())
				case sum.StateEpoch >= 0:
					dp.StartOffset, dp.LeaderEpoch = sum.StartOffset, sum.LeaderEpoch
					if req.Version >= 1 {
						shareLag(ctx, store, t.topic, sum, &dp)
					}
				}
			}
			parts[i] = dp
		})
		topicIndex := map[string]int{}
		for i, t := range targets {
			ti, ok := topicIndex[t.topic]
			if !ok {
				dt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
				dt.Topic, dt.TopicID = t.topic, t.id
				dg.Topics = append(dg.Topics, dt)
				ti = len(dg.Topics) - 1
				topicIndex[t.topic] = ti
			}
			dg.Topics[ti].Partitions = append(dg.Topics[ti].Partitions, parts[i])
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// shareLag sets dp's lag (DescribeShareGroupOffsets v1, KIP-1226) as
// Kafka computes it: the partition's high watermark minus the start offset
// minus the offsets at or after it whose delivery is complete
// (acknowledged or archived). It stays -1 when the state has no start
// offset or count, or store cannot read high watermarks; a high watermark
// that cannot be read is the partition's error, its offsets unset, as in
// Kafka.
func shareLag(ctx context.Context, store ShareStateStore, topic string, sum ShareStateSummary, dp *kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition) {
	ends, ok := store.(ShareEndOffsets)
	if !ok || sum.StartOffset < 0 || sum.DeliveryCompleteCount < 0 {
		return
	}
	hw, err := ends.HighWatermark(ctx, topic, dp.Partition)
	if err != nil {
		dp.StartOffset, dp.LeaderEpoch = -1, -1
		dp.ErrorCode, dp.ErrorMessage = persisterErrorCode(err), optional(fmt.Sprintf("read the high watermark of %s-%d: %v", topic, dp.Partition, err))
		return
	}
	dp.Lag = hw - sum.StartOffset - int64(sum.DeliveryCompleteCount)
}

// describeTargets resolves the share-partitions a describe names.
func (c *Coordinator) describeTargets(rg kmsg.DescribeShareGroupOffsetsRequestGroup) ([]shareTarget, int16, string) {
	if code := c.lockGroupRequest(rg.GroupID); code != 0 {
		return nil, code, ""
	}
	defer c.mu.Unlock()
	// A classic group's id is GROUP_ID_NOT_FOUND below; an unknown id
	// has no state.
	g, code, msg := c.shareGroupLocked(rg.GroupID)
	if classic := c.groups[rg.GroupID]; g == nil && classic != nil && classic.state != stateDead {
		return nil, code, msg
	}
	var targets []shareTarget
	if g == nil {
		// No such share group: no state, of any partition.
		for _, rt := range rg.Topics {
			id, _, _ := c.topicOf(rt.Topic)
			for _, p := range rt.Partitions {
				targets = append(targets, shareTarget{topic: rt.Topic, id: id, partition: p, missing: true})
			}
		}
		return targets, 0, ""
	}
	if rg.Topics == nil {
		for _, t := range sortedShareTopics(g.topics) {
			for p := int32(0); p < t.partitions; p++ {
				targets = append(targets, shareTarget{topic: t.name, id: t.id, partition: p})
			}
		}
		return targets, 0, ""
	}
	for _, rt := range rg.Topics {
		id, count, ok := c.topicOf(rt.Topic)
		for _, p := range rt.Partitions {
			targets = append(targets, shareTarget{topic: rt.Topic, id: id, partition: p, missing: !ok || p < 0 || p >= count})
		}
	}
	return targets, 0, ""
}

// AlterShareGroupOffsets sets the start offset of the named
// share-partitions of an empty share group (creating the group if it
// does not exist, as Kafka does): each state is initialized again
// (Persister.Initialize) with a state epoch above the stored one, which
// drops its in-flight records and delivery counts and fences the live
// share-partition on the partition's leader, which reloads. Errors: for
// the request NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
// INVALID_GROUP_ID, GROUP_ID_NOT_FOUND (a classic group's id),
// NON_EMPTY_GROUP (the group has members); per partition
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (a negative offset) and the
// state store's errors.
func (c *Coordinator) AlterShareGroupOffsets(ctx context.Context, req *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	fail := func(code int16, msg string) *kmsg.AlterShareGroupOffsetsResponse {
		resp.ErrorCode, resp.ErrorMessage = code, optional(msg)
		return resp
	}
	if code := c.lockGroupRequest(req.GroupID); code != 0 {
		return fail(code, "")
	}
	if g := c.groups[req.GroupID]; g != nil && g.state != stateDead {
		c.mu.Unlock()
		return fail(kerr.GroupIDNotFound.Code, fmt.Sprintf("group %s is a classic group, not a share group", req.GroupID))
	}
	g := c.shareGroups[req.GroupID]
	// changed: the group's record must be written (a new group, or
	// topics it did not have state for).
	changed := false
	if g == nil {
		g = newShareGroup(req.GroupID, time.Now())
		c.shareGroups[g.id] = g
		changed = true
	}
	if len(g.members) > 0 {
		c.mu.Unlock()
		return fail(kerr.NonEmptyGroup.Code, fmt.Sprintf("share group %s has %d members; stop its consumers first", g.id, len(g.members)))
	}
	type item struct {
		target shareTarget
		offset int64
	}
	var items []item
	for _, rt := range req.Topics {
		id, count, ok := c.topicOf(rt.Topic)
		if ok {
			if old, seen := g.topics[id]; !seen || old.partitions < count {
				g.topics[id] = shareTopic{id: id, name: rt.Topic, partitions: count}
				changed = true
			}
		}
		for _, rp := range rt.Partitions {
			t := shareTarget{topic: rt.Topic, id: id, partition: rp.Partition}
			switch {
			case !ok || rp.Partition < 0 || rp.Partition >= count:
				t.code, t.message = kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("%s-%d does not exist", rt.Topic, rp.Partition)
			case rp.StartOffset < 0:
				t.code, t.message = kerr.InvalidRequest.Code, fmt.Sprintf("start offset %d of %s-%d is negative", rp.StartOffset, rt.Topic, rp.Partition)
			}
			items = append(items, item{t, rp.StartOffset})
		}
	}
	var w written
	var code int16
	if changed {
		g.stored = false
		w, code = c.persistShareGroupLocked(g, g.epoch)
	}
	c.mu.Unlock()
	if code == 0 {
		code = c.waitWritten(ctx, w)
	}
	if code != 0 {
		return fail(code, "")
	}
	resets := make([]error, len(items))
	eachParallel(len(items), func(i int) {
		if t := items[i].target; t.code == 0 {
			resets[i] = c.resetShareState(ctx, ShareStateKey{Group: req.GroupID, TopicID: t.id, Partition: t.partition}, items[i].offset)
		}
	})
	topicIndex := map[string]int{}
	for i, it := range items {
		t := it.target
		ti, ok := topicIndex[t.topic]
		if !ok {
			rt := kmsg.NewAlterShareGroupOffsetsResponseTopic()
			rt.Topic, rt.TopicID = t.topic, t.id
			resp.Topics = append(resp.Topics, rt)
			ti = len(resp.Topics) - 1
			topicIndex[t.topic] = ti
		}
		rp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
		rp.Partition = t.partition
		rp.ErrorCode, rp.ErrorMessage = t.code, optional(t.message)
		if err := resets[i]; err != nil {
			rp.ErrorCode, rp.ErrorMessage = persisterErrorCode(err), optional(err.Error())
		}
		resp.Topics[ti].Partitions = append(resp.Topics[ti].Partitions, rp)
	}
	c.logger.Info("share group offsets altered", zapGroup(req.GroupID), zap.Int("partitions", len(items)))
	return resp
}

// resetShareState initializes a share-partition's state again at offset
// with a state epoch above the stored one; a concurrent change of the
// epoch (FENCED_STATE_EPOCH) is retried a few times.
func (c *Coordinator) resetShareState(ctx context.Context, key ShareStateKey, offset int64) error {
	store := c.persister()
	if store == nil {
		return errNoPersister
	}
	var err error
	for range 3 {
		var sum ShareStateSummary
		sum, err = store.ReadSummary(ctx, key)
		if err != nil {
			return err
		}
		err = store.Initialize(ctx, key, max(sum.StateEpoch+1, 0), offset)
		if !errors.Is(err, kerr.FencedStateEpoch) {
			return err
		}
	}
	return err
}

// DeleteShareGroupOffsets deletes the share-partition states of the named
// topics of an empty share group (Persister.Delete for each partition);
// the group forgets the topics, and starts them again from
// share.auto.offset.reset if it consumes them later. Errors: for the
// request NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, GROUP_ID_NOT_FOUND
// (unknown, or a classic group), NON_EMPTY_GROUP; per topic
// UNKNOWN_TOPIC_OR_PARTITION (neither in the cluster nor ever assigned)
// and the state store's errors.
func (c *Coordinator) DeleteShareGroupOffsets(ctx context.Context, req *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	fail := func(code int16, msg string) *kmsg.DeleteShareGroupOffsetsResponse {
		resp.ErrorCode, resp.ErrorMessage = code, optional(msg)
		return resp
	}
	if code := c.lockGroupRequest(req.GroupID); code != 0 {
		return fail(code, "")
	}
	g, code, msg := c.shareGroupLocked(req.GroupID)
	if code == 0 && len(g.members) > 0 {
		code, msg = kerr.NonEmptyGroup.Code, fmt.Sprintf("share group %s has %d members; stop its consumers first", g.id, len(g.members))
	}
	if code != 0 {
		c.mu.Unlock()
		return fail(code, msg)
	}
	type item struct {
		topic shareTopic
		code  int16
		msg   string
	}
	var items []item
	for _, rt := range req.Topics {
		var found *shareTopic
		for _, t := range g.topics {
			if t.name == rt.Topic {
				found = &t
				break
			}
		}
		switch {
		case found != nil:
			items = append(items, item{topic: *found})
		default:
			id, _, ok := c.topicOf(rt.Topic)
			if !ok {
				items = append(items, item{topic: shareTopic{name: rt.Topic}, code: kerr.UnknownTopicOrPartition.Code, msg: fmt.Sprintf("topic %s does not exist", rt.Topic)})
				continue
			}
			// Never assigned: nothing to delete.
			items = append(items, item{topic: shareTopic{id: id, name: rt.Topic}})
		}
	}
	c.mu.Unlock()
	for i := range items {
		it := &items[i]
		if it.code != 0 || it.topic.partitions == 0 {
			continue
		}
		store := c.persister()
		if store == nil {
			it.code, it.msg = kerr.CoordinatorNotAvailable.Code, errNoPersister.Error()
			continue
		}
		keys := make([]ShareStateKey, it.topic.partitions)
		for p := range keys {
			keys[p] = ShareStateKey{Group: req.GroupID, TopicID: it.topic.id, Partition: int32(p)}
		}
		if err := deleteStates(ctx, store, keys); err != nil {
			it.code, it.msg = persisterErrorCode(err), err.Error()
		}
	}
	// The group forgets the topics whose states are gone.
	if code := c.lockGroupRequest(req.GroupID); code != 0 {
		return fail(code, "")
	}
	var w written
	if c.shareGroups[req.GroupID] == g {
		changed := false
		for _, it := range items {
			if it.code == 0 && it.topic.partitions > 0 {
				delete(g.topics, it.topic.id)
				changed = true
			}
		}
		if changed {
			g.stored = false
			w, code = c.persistShareGroupLocked(g, g.epoch)
		}
	}
	c.mu.Unlock()
	if code == 0 {
		code = c.waitWritten(ctx, w)
	}
	if code != 0 {
		return fail(code, "")
	}
	for _, it := range items {
		rt := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		rt.Topic, rt.TopicID, rt.ErrorCode, rt.ErrorMessage = it.topic.name, it.topic.id, it.code, optional(it.msg)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// shareGroupLocked returns the share group id names, or
// GROUP_ID_NOT_FOUND (with a message) when there is none. c.mu is held.
func (c *Coordinator) shareGroupLocked(id string) (*shareGroup, int16, string) {
	if g := c.shareGroups[id]; g != nil {
		return g, 0, ""
	}
	if g := c.groups[id]; g != nil && g.state != stateDead {
		return nil, kerr.GroupIDNotFound.Code, fmt.Sprintf("group %s is a classic group, not a share group", id)
	}
	return nil, kerr.GroupIDNotFound.Code, fmt.Sprintf("share group %s does not exist", id)
}

// topicOf returns a topic's id and partition count, false when it does
// not exist.
func (c *Coordinator) topicOf(name string) ([16]byte, int32, bool) {
	t, ok := c.cluster.Topic(name)
	if !ok {
		return [16]byte{}, 0, false
	}
	return t.ID(), t.PartitionCount(), true
}

// optional returns a pointer to s, nil for "".
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
