package consumergroup

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit stores offsets durably in __consumer_offsets (one batch per
// request) before answering. Members commit with their generation; other
// clients (admin tools, consumers that assign partitions themselves) commit
// with generation -1 and no member id, which is allowed only while the
// group has no members, as in Kafka.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	setAll := func(code int16) *kmsg.OffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].ErrorCode == 0 {
					resp.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
		return resp
	}
	if code := c.lockGroupRequest(req.Group); code != 0 {
		return setAll(code)
	}
	if c.shareGroups[req.Group] != nil {
		// A share group has no committed offsets.
		c.mu.Unlock()
		return setAll(kerr.GroupIDNotFound.Code)
	}
	g := c.groups[req.Group]
	admin := req.Generation < 0 && req.MemberID == ""
	var code int16
	switch {
	case g == nil && admin:
	case g == nil && req.Generation < 0:
		// A member id without a generation, for a group that does not
		// exist: Kafka creates the group and then finds no such member.
		code = kerr.UnknownMemberID.Code
	case g == nil:
		code = kerr.IllegalGeneration.Code
	case g.state == stateDead:
		code = kerr.CoordinatorNotAvailable.Code
	case admin && g.state == stateEmpty:
	case g.state == stateCompletingRebalance && !admin:
		code = kerr.RebalanceInProgress.Code
	default:
		code = c.checkMemberLocked(g, req.MemberID, req.InstanceID, req.Generation)
		if code == 0 && g.state == stateCompletingRebalance {
			code = kerr.RebalanceInProgress.Code
		}
	}
	if code != 0 {
		c.mu.Unlock()
		return setAll(code)
	}
	if g == nil {
		g = newGroup(req.Group, time.Now())
		c.groups[req.Group] = g
	}
	if m := g.members[req.MemberID]; m != nil {
		c.armSession(g, m)
	}
	now := time.Now().UnixMilli()
	var records []kv
	type slot struct{ topic, partition int }
	var slots []slot
	var values []committed
	var tps []topicPartition
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			sp := &resp.Topics[i].Partitions[j]
			if rp.Metadata != nil && len(*rp.Metadata) > maxOffsetMetadataBytes {
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			if !c.knownPartition(topicPartition{rt.Topic, rp.Partition}) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			o := committed{offset: rp.Offset, leaderEpoch: rp.LeaderEpoch, commitTimestamp: now}
			if rp.Metadata != nil {
				o.metadata = *rp.Metadata
			}
			tp := topicPartition{rt.Topic, rp.Partition}
			records = append(records, kv{key: offsetKey(g.id, tp), value: offsetValue(o)})
			slots, values, tps = append(slots, slot{i, j}), append(values, o), append(tps, tp)
		}
	}
	if len(records) == 0 {
		c.mu.Unlock()
		return resp
	}
	fail := func(err error) *kmsg.OffsetCommitResponse {
		code := storeErrorCode(err)
		for _, s := range slots {
			resp.Topics[s.topic].Partitions[s.partition].ErrorCode = code
		}
		return resp
	}
	w, err := c.appendLocked(c.partitionFor(g.id), encodeBatch(records))
	if err != nil {
		c.mu.Unlock()
		return fail(err)
	}
	g.inflight++
	for _, tp := range tps {
		g.pendingCommits[tp]++
	}
	c.wg.Add(1)
	c.mu.Unlock()
	err = w.wait(ctx)
	c.wg.Done()

	// Applied even when the wait failed: the records are in the log and a
	// reload would find them, so memory must not miss them.
	c.mu.Lock()
	g.inflight--
	for i, tp := range tps {
		if g.pendingCommits[tp]--; g.pendingCommits[tp] <= 0 {
			delete(g.pendingCommits, tp)
		}
		if c.groups[g.id] == g {
			values[i].logOffset = w.base + int64(i)
			g.applyCommitLocked(tp, values[i])
		}
	}
	if g.inflight == 0 {
		clear(g.tombstones)
	}
	c.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	return resp
}

// OffsetFetch returns committed offsets: one group before v8, batched
// groups from v8. Null topics means every partition the group committed.
// Partitions without a commit answer offset -1. Offsets pending in an open
// transaction are not visible; with RequireStable (v7+, KIP-447) a
// partition that has some, or an OffsetCommit still being written, answers
// UNSTABLE_OFFSET_COMMIT (offset -1) so the consumer retries.
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			var topics []kmsg.OffsetFetchRequestTopic
			if rg.Topics != nil {
				topics = []kmsg.OffsetFetchRequestTopic{}
				for _, t := range rg.Topics {
					topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			code, fetched := c.fetchOffsetsLocked(rg.Group, topics, req.RequireStable)
			sg.ErrorCode = code
			for _, ft := range fetched {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = ft.Topic
				for _, fp := range ft.Partitions {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = fp.Partition, fp.Offset, fp.LeaderEpoch, fp.Metadata, fp.ErrorCode
					gt.Partitions = append(gt.Partitions, gp)
				}
				sg.Topics = append(sg.Topics, gt)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}
	code, fetched := c.fetchOffsetsLocked(req.Group, req.Topics, req.Version >= 7 && req.RequireStable)
	resp.ErrorCode, resp.Topics = code, fetched
	return resp
}

// fetchOffsetsLocked answers one group's OffsetFetch; requireStable marks
// partitions with commits not yet visible UNSTABLE_OFFSET_COMMIT.
func (c *Coordinator) fetchOffsetsLocked(groupID string, topics []kmsg.OffsetFetchRequestTopic, requireStable bool) (int16, []kmsg.OffsetFetchResponseTopic) {
	if groupID == "" {
		return kerr.InvalidGroupID.Code, nil
	}
	if code := c.checkGroupLocked(groupID); code != 0 {
		return code, nil
	}
	g := c.groups[groupID]
	answer := func(tp topicPartition) kmsg.OffsetFetchResponseTopicPartition {
		fp := kmsg.NewOffsetFetchResponseTopicPartition()
		fp.Partition = tp.partition
		empty := ""
		fp.Offset, fp.LeaderEpoch, fp.Metadata = -1, -1, &empty
		if g != nil && requireStable && g.unstableLocked(tp) {
			fp.ErrorCode = kerr.UnstableOffsetCommit.Code
			return fp
		}
		if g != nil {
			if o, ok := g.offsets[tp]; ok {
				metadata := o.metadata
				fp.Offset, fp.LeaderEpoch, fp.Metadata = o.offset, o.leaderEpoch, &metadata
			}
		}
		return fp
	}
	var out []kmsg.OffsetFetchResponseTopic
	if topics == nil {
		if g == nil {
			return 0, nil
		}
		byTopic := map[string]int{}
		for tp := range g.offsets {
			i, ok := byTopic[tp.topic]
			if !ok {
				i = len(out)
				byTopic[tp.topic] = i
				ft := kmsg.NewOffsetFetchResponseTopic()
				ft.Topic = tp.topic
				out = append(out, ft)
			}
			out[i].Partitions = append(out[i].Partitions, answer(tp))
		}
		return 0, out
	}
	for _, rt := range topics {
		ft := kmsg.NewOffsetFetchResponseTopic()
		ft.Topic = rt.Topic
		for _, p := range rt.Partitions {
			ft.Partitions = append(ft.Partitions, answer(topicPartition{rt.Topic, p}))
		}
		out = append(out, ft)
	}
	return 0, out
}

// OffsetDelete deletes committed offsets of partitions the group does not
// consume: GROUP_SUBSCRIBED_TO_TOPIC for topics a member of a non-empty
// consumer group subscribes to.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if resp.ErrorCode = c.lockGroupRequest(req.Group); resp.ErrorCode != 0 {
		return resp
	}
	g := c.groups[req.Group]
	switch {
	case g == nil || g.state == stateDead:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
	case g.state != stateEmpty && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
	}
	if resp.ErrorCode != 0 {
		c.mu.Unlock()
		return resp
	}
	subscribed := subscribedTopics(g)
	var records []kv
	var deleted []topicPartition
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := topicPartition{rt.Topic, rp.Partition}
			switch {
			case !c.knownPartition(tp):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case subscribed[rt.Topic]:
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				_, ok := g.offsets[tp]
				if ok || g.hasTxnOffsetLocked(tp) {
					records = append(records, kv{key: offsetKey(g.id, tp)})
					deleted = append(deleted, tp)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(records) == 0 {
		c.mu.Unlock()
		return resp
	}
	w, err := c.appendLocked(c.partitionFor(g.id), encodeBatch(records))
	if err != nil {
		c.mu.Unlock()
		resp.ErrorCode, resp.Topics = storeErrorCode(err), nil
		return resp
	}
	for i, tp := range deleted {
		g.deleteOffsetLocked(tp, w.base+int64(i))
		g.dropTxnOffsetsLocked(tp)
	}
	c.wg.Add(1)
	c.mu.Unlock()
	err = w.wait(ctx)
	c.wg.Done()
	if err != nil {
		resp.ErrorCode, resp.Topics = storeErrorCode(err), nil
	}
	return resp
}

// subscribedTopics returns the topics the members of a non-empty consumer
// group subscribe to, from their consumer protocol metadata.
func subscribedTopics(g *group) map[string]bool {
	topics := map[string]bool{}
	if g.state == stateEmpty || g.protocolType != "consumer" {
		return topics
	}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			continue
		}
		for _, t := range meta.Topics {
			topics[t] = true
		}
	}
	return topics
}

// knownPartition reports whether tp exists (wherever its replicas are).
func (c *Coordinator) knownPartition(tp topicPartition) bool {
	t, ok := c.cluster.Topic(tp.topic)
	return ok && tp.partition >= 0 && tp.partition < t.PartitionCount()
}
