package consumergroup

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// applyOffset records a committed offset (e nil: a deletion) whose record
// is at logOffset, unless a later record for the partition was applied
// already; g.mu is held.
func (g *group) applyOffset(tp topicPartition, e *offsetEntry, logOffset int64) {
	if old, ok := g.offsets[tp]; ok && old.logOffset > logOffset {
		return
	}
	if t, ok := g.tombstones[tp]; ok && t > logOffset {
		return
	}
	if e == nil {
		delete(g.offsets, tp)
		if g.inflight > 0 {
			g.tombstones[tp] = logOffset
		}
		return
	}
	e.logOffset = logOffset
	g.offsets[tp] = *e
}

// endWrite ends one in-flight write; g.mu is held.
func (g *group) endWrite() {
	g.inflight--
	if g.inflight == 0 {
		clear(g.tombstones)
	}
}

// commitItem is one partition of an OffsetCommit: where its error goes and
// what to store.
type commitItem struct {
	tp    topicPartition
	entry offsetEntry
	code  *int16
}

// OffsetCommit stores offsets durably in __consumer_offsets before
// answering.
//
// Members commit with their generation and member id (ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID; REBALANCE_IN_PROGRESS while
// CompletingRebalance; allowed while PreparingRebalance). Admin clients
// commit with generation -1 and no member id, only to an Empty or unknown
// group (UNKNOWN_MEMBER_ID otherwise). Unknown topics or partitions are
// UNKNOWN_TOPIC_OR_PARTITION (v10: unknown topic ids UNKNOWN_TOPIC_ID);
// metadata above OffsetMetadataMaxBytes is OFFSET_METADATA_TOO_LARGE. All
// accepted offsets of a request are one record batch; the answer comes
// once it is committed. v2-4's retention time is ignored: offsets expire
// by OffsetsRetention (KIP-211).
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	var items []commitItem
	now := time.Now().UnixMilli()
	for _, rt := range req.Topics {
		st := kmsg.OffsetCommitResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
		name, topicErr := rt.Topic, (*kerr.Error)(nil)
		var partitions int
		if req.Version >= 10 {
			if t, ok := c.cluster.TopicByID(rt.TopicID); ok {
				name, partitions = t.Name, len(t.Partitions())
			} else {
				topicErr = kerr.UnknownTopicID
			}
		} else if t, ok := c.cluster.Topic(rt.Topic); ok {
			partitions = len(t.Partitions())
		} else {
			topicErr = kerr.UnknownTopicOrPartition
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.OffsetCommitResponseTopicPartition{Partition: rp.Partition}
			switch {
			case topicErr != nil:
				sp.ErrorCode = topicErr.Code
			case rp.Partition < 0 || int(rp.Partition) >= partitions:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > c.cfg.OffsetMetadataMaxBytes:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
		for i, rp := range rt.Partitions {
			if st.Partitions[i].ErrorCode != 0 {
				continue
			}
			e := offsetEntry{offset: rp.Offset, leaderEpoch: -1, commitTimestamp: now}
			if req.Version >= 6 {
				e.leaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				e.metadata = *rp.Metadata
			}
			items = append(items, commitItem{tp: topicPartition{name, rp.Partition}, entry: e})
		}
	}
	// Pointers into resp only now that its slices stop growing.
	k := 0
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			if resp.Topics[ti].Partitions[pi].ErrorCode == 0 {
				items[k].code = &resp.Topics[ti].Partitions[pi].ErrorCode
				k++
			}
		}
	}
	if len(items) == 0 {
		return resp
	}
	setAll := func(e *kerr.Error) *kmsg.OffsetCommitResponse {
		for _, it := range items {
			*it.code = e.Code
		}
		return resp
	}

	if !c.enter() {
		return setAll(kerr.NotCoordinator)
	}
	defer c.wg.Done()
	if c.isLoading(req.Group) {
		return setAll(kerr.CoordinatorLoadInProgress)
	}
	g := c.lockLive(req.Group, req.Generation < 0)
	if g == nil {
		// A member of a generation of a group that is gone.
		return setAll(kerr.IllegalGeneration)
	}
	if err := g.validateCommit(req); err != nil {
		g.maybeDrop()
		g.mu.Unlock()
		c.logger.Debug("offset commit refused", zap.String("group", req.Group), zap.String("member", req.MemberID), zap.Int32("generation", req.Generation), zap.Int16("error-code", err.Code))
		return setAll(err)
	}
	records := make([]record, len(items))
	for i, it := range items {
		records[i] = record{key: offsetCommitKey(g.id, it.tp.topic, it.tp.partition), value: offsetCommitValue(it.entry)}
	}
	p, base, err := g.appendRecords(records)
	if err != nil {
		g.maybeDrop()
		g.mu.Unlock()
		return setAll(c.storageError(err, "offset commit"))
	}
	g.inflight++
	for _, it := range items {
		g.pendingCommits[it.tp]++
	}
	g.mu.Unlock()

	werr := c.afterCommit(ctx, p, base+int64(len(items))-1, func(err error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		defer g.endWrite()
		for _, it := range items {
			if g.pendingCommits[it.tp]--; g.pendingCommits[it.tp] <= 0 {
				delete(g.pendingCommits, it.tp)
			}
		}
		if err != nil || g.state == stateDead {
			return
		}
		for i := range items {
			g.applyOffset(items[i].tp, &items[i].entry, base+int64(i))
		}
	})
	if werr != nil {
		return setAll(c.storageError(werr, "offset commit"))
	}
	c.logger.Debug("offsets committed", zap.String("group", req.Group), zap.Int("partitions", len(items)), zap.Int64("log-offset", base))
	return resp
}

// validateCommit applies Kafka's validateOffsetCommit and state rules;
// g.mu is held.
func (g *group) validateCommit(req *kmsg.OffsetCommitRequest) *kerr.Error {
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
			return err
		}
		if req.Generation != g.generation {
			return kerr.IllegalGeneration
		}
	} else if g.state != stateEmpty {
		// When the group has members only they commit.
		return kerr.UnknownMemberID
	}
	switch g.state {
	case stateCompletingRebalance:
		return kerr.RebalanceInProgress
	case stateStable, statePreparingRebalance:
		// Commits still count during PreparingRebalance: the heartbeat
		// tells the member about the rebalance.
		g.scheduleHeartbeat(g.members[req.MemberID])
	}
	return nil
}

// OffsetFetch returns committed offsets (batched groups, v8+).
//
// Null topics mean every committed offset of the group. Partitions
// without a commit, unknown topics and unknown groups are offset -1,
// metadata "" and no error. RequireStable (v7+) never yields
// UNSTABLE_OFFSET_COMMIT: there are no transactions. v9's member id and
// epoch are for KIP-848 groups and ignored. v10 names topics by id;
// offsets of topics that no longer exist are left out of "all".
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	open := c.enter()
	if open {
		defer c.wg.Done()
	}
	if req.Version <= 7 {
		var topics []kmsg.OffsetFetchRequestGroupTopic
		if req.Topics != nil {
			topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
			for _, t := range req.Topics {
				topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		sg := c.fetchGroup(open, req.Version, req.Group, topics)
		resp.ErrorCode = sg.ErrorCode
		for _, t := range sg.Topics {
			st := kmsg.OffsetFetchResponseTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				if req.Version <= 1 && sg.ErrorCode != 0 {
					// v0-1 have no group error: each partition carries it.
					sp.ErrorCode = sg.ErrorCode
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		if req.Version <= 1 {
			resp.ErrorCode = 0
		}
		return resp
	}
	for _, rg := range req.Groups {
		resp.Groups = append(resp.Groups, c.fetchGroup(open, req.Version, rg.Group, rg.Topics))
	}
	return resp
}

// fetchGroup answers one group of an OffsetFetch; topics nil is every
// committed offset.
func (c *Coordinator) fetchGroup(open bool, version int16, id string, topics []kmsg.OffsetFetchRequestGroupTopic) kmsg.OffsetFetchResponseGroup {
	sg := kmsg.OffsetFetchResponseGroup{Group: id}
	var groupErr *kerr.Error
	switch {
	case !open:
		groupErr = kerr.NotCoordinator
	case c.isLoading(id):
		groupErr = kerr.CoordinatorLoadInProgress
	}
	if groupErr != nil {
		sg.ErrorCode = groupErr.Code
		// Echo the partitions asked for, so v0-1 can carry the error.
		for _, t := range topics {
			st := kmsg.OffsetFetchResponseGroupTopic{Topic: t.Topic, TopicID: t.TopicID}
			for _, p := range t.Partitions {
				sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				sp.Partition, sp.Offset = p, -1
				st.Partitions = append(st.Partitions, sp)
			}
			sg.Topics = append(sg.Topics, st)
		}
		return sg
	}

	// Copy what is needed under the group lock, resolve names after.
	var committed map[topicPartition]offsetEntry
	if g := c.lockLive(id, false); g != nil {
		if topics == nil {
			committed = make(map[topicPartition]offsetEntry, len(g.offsets))
			for tp, e := range g.offsets {
				committed[tp] = e
			}
		} else {
			committed = make(map[topicPartition]offsetEntry)
			for _, t := range topics {
				name := t.Topic
				if version >= 10 {
					if tt, ok := c.cluster.TopicByID(t.TopicID); ok {
						name = tt.Name
					}
				}
				for _, p := range t.Partitions {
					tp := topicPartition{name, p}
					if e, ok := g.offsets[tp]; ok {
						committed[tp] = e
					}
				}
			}
		}
		g.mu.Unlock()
	}

	partitionOf := func(tp topicPartition, e offsetEntry, ok bool) kmsg.OffsetFetchResponseGroupTopicPartition {
		sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		sp.Partition = tp.partition
		sp.Offset = -1
		md := ""
		if ok {
			sp.Offset, sp.LeaderEpoch, md = e.offset, e.leaderEpoch, e.metadata
		}
		sp.Metadata = &md
		return sp
	}
	if topics != nil {
		for _, t := range topics {
			st := kmsg.OffsetFetchResponseGroupTopic{Topic: t.Topic, TopicID: t.TopicID}
			name := t.Topic
			unknownID := false
			if version >= 10 {
				if tt, ok := c.cluster.TopicByID(t.TopicID); ok {
					name = tt.Name
				} else {
					unknownID = true
				}
			}
			for _, p := range t.Partitions {
				tp := topicPartition{name, p}
				e, ok := committed[tp]
				sp := partitionOf(tp, e, ok && !unknownID)
				if unknownID {
					sp.ErrorCode = kerr.UnknownTopicID.Code
				}
				st.Partitions = append(st.Partitions, sp)
			}
			sg.Topics = append(sg.Topics, st)
		}
		return sg
	}
	byTopic := make(map[string][]topicPartition)
	for tp := range committed {
		byTopic[tp.topic] = append(byTopic[tp.topic], tp)
	}
	for _, name := range sortedKeys(byTopic) {
		st := kmsg.OffsetFetchResponseGroupTopic{Topic: name}
		if version >= 10 {
			t, ok := c.cluster.Topic(name)
			if !ok {
				continue
			}
			st.TopicID = t.ID
		}
		tps := byTopic[name]
		sortPartitions(tps)
		for _, tp := range tps {
			st.Partitions = append(st.Partitions, partitionOf(tp, committed[tp], true))
		}
		sg.Topics = append(sg.Topics, st)
	}
	return sg
}

// OffsetDelete deletes committed offsets of partitions no member
// consumes.
//
// An Empty group loses any offsets asked for; a consumer group with
// members loses those of topics none of them subscribes to
// (GROUP_SUBSCRIBED_TO_TOPIC for the others; when the subscriptions
// cannot be parsed every topic counts as subscribed); any other group
// with members is NON_EMPTY_GROUP. Unknown groups are GROUP_ID_NOT_FOUND,
// unknown topics or partitions UNKNOWN_TOPIC_OR_PARTITION. Deletions are
// tombstones, answered once committed.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if !c.enter() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	defer c.wg.Done()
	switch {
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	case c.isLoading(req.Group):
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp
	}
	g := c.lockLive(req.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	var checkSubscription bool
	switch g.state {
	case stateEmpty:
	case statePreparingRebalance, stateCompletingRebalance, stateStable:
		if g.protocolType != consumerProtocolType {
			g.mu.Unlock()
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return resp
		}
		checkSubscription = true
	}
	var (
		tps     []topicPartition
		records []record
	)
	for _, rt := range req.Topics {
		st := kmsg.OffsetDeleteResponseTopic{Topic: rt.Topic}
		t, known := c.cluster.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.OffsetDeleteResponseTopicPartition{Partition: rp.Partition}
			switch {
			case !known || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions()):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case checkSubscription && g.isSubscribedTo(rt.Topic):
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				tp := topicPartition{rt.Topic, rp.Partition}
				if _, ok := g.offsets[tp]; ok {
					tps = append(tps, tp)
					records = append(records, record{key: offsetCommitKey(g.id, tp.topic, tp.partition)})
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(records) == 0 {
		g.mu.Unlock()
		return resp
	}
	p, base, err := g.appendRecords(records)
	if err != nil {
		g.mu.Unlock()
		resp.ErrorCode = c.storageError(err, "offset delete").Code
		return resp
	}
	// Deletions apply at once: reading an offset that is about to be gone
	// is harmless, and a commit racing with the delete is ordered by log
	// offset either way.
	g.inflight++
	for i, tp := range tps {
		g.applyOffset(tp, nil, base+int64(i))
	}
	g.mu.Unlock()
	err = c.afterCommit(ctx, p, base+int64(len(records))-1, func(error) {
		g.mu.Lock()
		g.endWrite()
		g.mu.Unlock()
	})
	if err != nil {
		resp.ErrorCode = c.storageError(err, "offset delete").Code
		return resp
	}
	c.logger.Debug("offsets deleted", zap.String("group", req.Group), zap.Int("partitions", len(tps)))
	return resp
}
