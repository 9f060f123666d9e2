package consumergroup

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/configs"
)

// ShareGroupHeartbeat is a share group member's heartbeat (KIP-932): a
// member joins with epoch 0 (creating the group), heartbeats with its
// epoch, and leaves with epoch -1. The member id is the client's own. The
// answer carries the member's epoch, the heartbeat interval, and its
// assignment (by topic id) when it changed or the request is a full one
// (with SubscribedTopicNames). A change of the group epoch is durable in
// __consumer_offsets before the answer. Errors: INVALID_REQUEST (empty
// group or member id, epoch below -1, a join without topics, an empty
// rack), NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, GROUP_ID_NOT_FOUND
// (the id is a classic group's, or the group does not exist and the
// member is not joining), UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH,
// GROUP_MAX_SIZE_REACHED.
func (c *Coordinator) ShareGroupHeartbeat(ctx context.Context, req *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	fail := func(code int16, msg string) *kmsg.ShareGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		return resp
	}
	switch {
	case strings.TrimSpace(req.GroupID) == "":
		return fail(kerr.InvalidRequest.Code, "GroupId can't be empty")
	case strings.TrimSpace(req.MemberID) == "":
		return fail(kerr.InvalidRequest.Code, "MemberId can't be empty")
	case req.MemberEpoch < -1:
		return fail(kerr.InvalidRequest.Code, fmt.Sprintf("MemberEpoch %d is invalid", req.MemberEpoch))
	case req.MemberEpoch == 0 && len(req.SubscribedTopicNames) == 0:
		return fail(kerr.InvalidRequest.Code, "SubscribedTopicNames must be set in the first request")
	case req.RackID != nil && strings.TrimSpace(*req.RackID) == "":
		return fail(kerr.InvalidRequest.Code, "RackId can't be empty")
	}
	// The group config is resolved outside c.mu: it reads the cluster
	// metadata.
	gc := c.shareConfig(req.GroupID)
	if code := c.lockGroupRequest(req.GroupID); code != 0 {
		return fail(code, "")
	}
	if g := c.groups[req.GroupID]; g != nil && g.state != stateDead {
		c.mu.Unlock()
		return fail(kerr.GroupIDNotFound.Code, fmt.Sprintf("group %s is a classic group, not a share group", req.GroupID))
	}
	g := c.shareGroups[req.GroupID]
	if g == nil {
		if req.MemberEpoch != 0 {
			c.mu.Unlock()
			return fail(kerr.GroupIDNotFound.Code, fmt.Sprintf("share group %s does not exist", req.GroupID))
		}
		g = newShareGroup(req.GroupID, time.Now())
	}
	startEpoch := g.epoch
	m := g.members[req.MemberID]
	changed := false
	switch {
	case req.MemberEpoch == -1:
		if m == nil {
			c.mu.Unlock()
			return fail(kerr.UnknownMemberID.Code, "")
		}
		c.removeShareMemberLocked(g, m, "left")
		w, code := c.persistShareGroupLocked(g, startEpoch)
		c.mu.Unlock()
		if code == 0 {
			code = c.waitWritten(ctx, w)
		}
		resp.MemberID, resp.MemberEpoch = &req.MemberID, -1
		return fail(code, "")
	case req.MemberEpoch == 0:
		if m == nil {
			if len(g.members) >= c.cfg.ShareMaxSize {
				c.mu.Unlock()
				return fail(kerr.GroupMaxSizeReached.Code, fmt.Sprintf("share group %s has %d members, the most group.share.max.size allows", g.id, len(g.members)))
			}
			g.joinSeq++
			m = &shareMember{id: req.MemberID, joinSeq: g.joinSeq}
			g.members[m.id] = m
			changed = true
			if c.shareGroups[g.id] != g {
				c.shareGroups[g.id] = g
			}
			c.logger.Info("share group member joined", zapGroup(g.id), zapMember(m.id))
		}
		// A rejoin with a known id keeps the member; its assignment is
		// sent again.
	default:
		switch {
		case m == nil:
			c.mu.Unlock()
			return fail(kerr.UnknownMemberID.Code, "")
		case req.MemberEpoch != m.epoch && req.MemberEpoch != m.previousEpoch:
			c.mu.Unlock()
			return fail(kerr.FencedMemberEpoch.Code, fmt.Sprintf("member epoch %d is neither the current %d nor the previous %d", req.MemberEpoch, m.epoch, m.previousEpoch))
		}
	}
	ci := clientFrom(ctx)
	m.clientID, m.host = ci.id, ci.host
	if req.RackID != nil {
		rack := *req.RackID
		m.rackID = &rack
	}
	if req.SubscribedTopicNames != nil {
		subscribed := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(subscribed)
		subscribed = slices.Compact(subscribed)
		if !slices.Equal(subscribed, m.subscribed) {
			m.subscribed = subscribed
			changed = true
		}
	}
	if c.refreshShareAssignmentLocked(g, changed) {
		c.logger.Debug("share group epoch bumped", zapGroup(g.id), zap.Int32("epoch", g.epoch), zap.Int("members", len(g.members)))
	}
	sendAssignment := req.SubscribedTopicNames != nil || req.MemberEpoch == 0
	if m.epoch != g.epoch {
		m.previousEpoch, m.epoch = m.epoch, g.epoch
		sendAssignment = true
	}
	c.armShareSession(g, m, gc)
	resp.MemberID, resp.MemberEpoch = &req.MemberID, m.epoch
	resp.HeartbeatIntervalMillis = int32(c.shareHeartbeatInterval(gc) / time.Millisecond)
	if sendAssignment {
		a := new(kmsg.ShareGroupHeartbeatResponseAssignment)
		ids := make([][16]byte, 0, len(m.assignment))
		for id := range m.assignment {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b [16]byte) int { return strings.Compare(string(a[:]), string(b[:])) })
		for _, id := range ids {
			tp := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
			tp.TopicID, tp.Partitions = id, slices.Clone(m.assignment[id])
			a.TopicPartitions = append(a.TopicPartitions, tp)
		}
		resp.Assignment = a
	}
	w, code := c.persistShareGroupLocked(g, startEpoch)
	c.mu.Unlock()
	if code == 0 {
		code = c.waitWritten(ctx, w)
	}
	if code != 0 {
		return fail(code, "")
	}
	return resp
}

// refreshShareAssignmentLocked recomputes the group's target assignment
// and bumps its epoch when membership or subscriptions changed (changed)
// or the subscribed topics' metadata did; it reports whether it did.
func (c *Coordinator) refreshShareAssignmentLocked(g *shareGroup, changed bool) bool {
	shape := c.shareShape(g.subscribedTopics())
	if !changed && sameShape(shape, g.shape) {
		return false
	}
	g.shape = shape
	g.epoch++
	assigned := assignShare(g.sortedMembers(), shape)
	for _, m := range g.members {
		m.assignment = assigned[m.id]
	}
	for _, t := range shape {
		if old, ok := g.topics[t.id]; !ok || old.partitions < t.partitions || old.name != t.name {
			g.topics[t.id] = shareTopic{id: t.id, name: t.name, partitions: max(t.partitions, old.partitions)}
		}
	}
	return true
}

// shareShape returns the metadata of the named topics that exist.
func (c *Coordinator) shareShape(names []string) map[string]shareTopic {
	shape := make(map[string]shareTopic, len(names))
	for _, name := range names {
		t, ok := c.cluster.Topic(name)
		if !ok {
			continue
		}
		shape[name] = shareTopic{id: t.ID(), name: name, partitions: t.PartitionCount()}
	}
	return shape
}

// removeShareMemberLocked removes a member (left or expired) and
// reassigns its partitions to the others.
func (c *Coordinator) removeShareMemberLocked(g *shareGroup, m *shareMember, reason string) {
	delete(g.members, m.id)
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	if len(g.members) == 0 {
		g.emptySince = time.Now()
	}
	c.refreshShareAssignmentLocked(g, true)
	c.logger.Info("share group member removed", zapGroup(g.id), zapMember(m.id), zap.String("reason", reason), zap.Int32("epoch", g.epoch))
}

// armShareSession (re)starts a member's session timer: a member not heard
// from within the session timeout is removed and its partitions go to
// the others.
func (c *Coordinator) armShareSession(g *shareGroup, m *shareMember, gc configs.ShareGroup) {
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	m.sessionSeq++
	seq := m.sessionSeq
	m.sessionTimer = time.AfterFunc(c.shareSessionTimeout(gc), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.shareGroups[g.id] != g || g.members[m.id] != m || m.sessionSeq != seq ||
			c.coordinatorLocked(c.partitionFor(g.id)) != 0 || c.shareGroups[g.id] != g {
			return
		}
		start := g.epoch
		c.removeShareMemberLocked(g, m, "session expired")
		// Nobody waits for this record: it is durable with the next
		// sync, and a lost one only means a lower stored epoch, which
		// the next change raises again.
		w, code := c.persistShareGroupLocked(g, start)
		if code != 0 {
			c.logger.Warn("store share group after session expiry", zapGroup(g.id), zap.Int16("code", code))
		}
		if w.pending {
			c.wg.Done()
		}
	})
}

// shareSessionTimeout is the group's share.session.timeout.ms, else the
// broker's group.share.session.timeout.ms.
func (c *Coordinator) shareSessionTimeout(gc configs.ShareGroup) time.Duration {
	if gc.SessionTimeout > 0 {
		return gc.SessionTimeout
	}
	return c.cfg.ShareSessionTimeout
}

// shareHeartbeatInterval is the group's share.heartbeat.interval.ms,
// else the broker's group.share.heartbeat.interval.ms.
func (c *Coordinator) shareHeartbeatInterval(gc configs.ShareGroup) time.Duration {
	if gc.HeartbeatInterval > 0 {
		return gc.HeartbeatInterval
	}
	return c.cfg.ShareHeartbeatInterval
}

// shareConfig returns the configuration in force for a share group: its
// GROUP resource configs over the defaults.
func (c *Coordinator) shareConfig(group string) configs.ShareGroup {
	if c.shareConfigs == nil {
		return configs.DefaultShareGroup()
	}
	return c.shareConfigs(group)
}

// waitWritten waits for a record persistShareGroupLocked appended to be
// durable and releases its count in c.wg; 0 when none was appended (a
// zero written). c.mu is not held.
func (c *Coordinator) waitWritten(ctx context.Context, w written) int16 {
	if !w.pending {
		return 0
	}
	defer c.wg.Done()
	if err := w.wait(ctx); err != nil {
		return storeErrorCode(err)
	}
	return 0
}

// stopShareTimersLocked stops the session timers of a share group's
// members.
func stopShareTimersLocked(g *shareGroup) {
	for _, m := range g.members {
		if m.sessionTimer != nil {
			m.sessionTimer.Stop()
		}
	}
}
