package consumergroup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// ShareGroupDescribe describes share groups (KIP-932): state (Empty or
// Stable), group and assignment epoch, assignor ("simple"), and each
// member's epoch, client, rack, subscription and assignment (topic ids and
// names). Per group: INVALID_GROUP_ID for an empty id, NOT_COORDINATOR or
// COORDINATOR_LOAD_IN_PROGRESS, GROUP_ID_NOT_FOUND for an unknown group
// or a classic group's id.
func (c *Coordinator) ShareGroupDescribe(ctx context.Context, req *kmsg.ShareGroupDescribeRequest) *kmsg.ShareGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range req.GroupIDs {
		dg := kmsg.NewShareGroupDescribeResponseGroup()
		dg.GroupID = id
		fail := func(code int16, msg string) {
			dg.ErrorCode = code
			if msg != "" {
				dg.ErrorMessage = &msg
			}
		}
		var code int16
		if id != "" {
			code = c.checkGroupLocked(id)
		}
		g := c.shareGroups[id]
		switch {
		case id == "":
			fail(kerr.InvalidGroupID.Code, "")
		case code != 0:
			fail(code, "")
		case g == nil && c.groups[id] != nil && c.groups[id].state != stateDead:
			fail(kerr.GroupIDNotFound.Code, fmt.Sprintf("group %s is a classic group, not a share group", id))
		case g == nil:
			fail(kerr.GroupIDNotFound.Code, fmt.Sprintf("share group %s does not exist", id))
		default:
			c.fillShareDescribeLocked(g, &dg)
			if req.IncludeAuthorizedOperations {
				dg.AuthorizedOperations = allGroupOperations
			}
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) fillShareDescribeLocked(g *shareGroup, dg *kmsg.ShareGroupDescribeResponseGroup) {
	dg.GroupState, dg.GroupEpoch, dg.AssignmentEpoch, dg.Assignor = g.state(), g.epoch, g.epoch, "simple"
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewShareGroupDescribeResponseGroupMember()
		dm.MemberID, dm.RackID, dm.MemberEpoch = m.id, m.rackID, m.epoch
		dm.ClientID, dm.ClientHost = m.clientID, m.host
		dm.SubscribedTopicNames = slices.Clone(m.subscribed)
		if dm.SubscribedTopicNames == nil {
			dm.SubscribedTopicNames = []string{}
		}
		ids := make([][16]byte, 0, len(m.assignment))
		for id := range m.assignment {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return g.topics[ids[i]].name < g.topics[ids[j]].name })
		for _, id := range ids {
			tp := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
			tp.TopicID, tp.Topic, tp.Partitions = id, g.topics[id].name, slices.Clone(m.assignment[id])
			dm.Assignment.TopicPartitions = append(dm.Assignment.TopicPartitions, tp)
		}
		dg.Members = append(dg.Members, dm)
	}
}

func (c *Coordinator) sortedShareGroupsLocked() []*shareGroup {
	gs := make([]*shareGroup, 0, len(c.shareGroups))
	for _, g := range c.shareGroups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].id < gs[j].id })
	return gs
}

// shareKeysLocked returns the share-partition keys of every partition of
// the topics the group was ever assigned (those that may have state).
func shareKeysLocked(g *shareGroup) []ShareStateKey {
	var keys []ShareStateKey
	for _, t := range sortedShareTopics(g.topics) {
		for p := int32(0); p < t.partitions; p++ {
			keys = append(keys, ShareStateKey{Group: g.id, TopicID: t.id, Partition: p})
		}
	}
	return keys
}

// deleteShareGroup deletes an empty share group: first the states of its
// share-partitions (through the persister; none when no persister is
// wired), then its record (a tombstone, durable before answering).
// NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND once gone.
func (c *Coordinator) deleteShareGroup(ctx context.Context, id string) int16 {
	if code := c.lockGroupRequest(id); code != 0 {
		return code
	}
	g := c.shareGroups[id]
	switch {
	case g == nil:
		c.mu.Unlock()
		return kerr.GroupIDNotFound.Code
	case len(g.members) > 0:
		c.mu.Unlock()
		return kerr.NonEmptyGroup.Code
	}
	keys := shareKeysLocked(g)
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()
	if store := c.persister(); store != nil {
		if err := deleteStates(ctx, store, keys); err != nil {
			c.logger.Warn("delete share-partition states", zapGroup(id), zapErr(err))
			return persisterErrorCode(err)
		}
	}
	if code := c.lockGroupRequest(id); code != 0 {
		return code
	}
	switch {
	case c.shareGroups[id] != g:
		c.mu.Unlock()
		return kerr.GroupIDNotFound.Code
	case len(g.members) > 0:
		// A member joined while the states were being deleted: they
		// start again from the group's auto.offset.reset.
		c.mu.Unlock()
		return kerr.NonEmptyGroup.Code
	}
	w, err := c.appendLocked(c.partitionFor(id), shareTombstoneBatch(id))
	if err != nil {
		c.mu.Unlock()
		return storeErrorCode(err)
	}
	stopShareTimersLocked(g)
	delete(c.shareGroups, id)
	c.mu.Unlock()
	if err := w.wait(ctx); err != nil {
		return storeErrorCode(err)
	}
	c.logger.Info("share group deleted", zapGroup(id), zap.Int("share-partitions", len(keys)))
	return 0
}

// persisterErrorCode turns a persister's error into the code a client
// retries on or acts on.
func persisterErrorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	case errors.As(err, &ke):
		return ke.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}
