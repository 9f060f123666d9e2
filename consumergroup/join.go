package consumergroup

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// JoinGroup blocks until the rebalance the member joins completes (or ctx
// ends): the classic protocol state machine.
//
// A new member without an id gets MEMBER_ID_REQUIRED and a generated id
// ("<client.id>-<uuid>", see WithClient) from v4 on, and must rejoin with
// it; static members (group.instance.id, v5+) and older versions join at
// once. When ctx ends first the member stays in the rebalance (as in
// Kafka: it may rejoin) and the response is REBALANCE_IN_PROGRESS, which
// every client answers by rejoining. After Close the response is
// NOT_COORDINATOR.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.MemberID = req.MemberID
	fail := func(e *kerr.Error) *kmsg.JoinGroupResponse {
		resp.ErrorCode = e.Code
		resp.Generation = -1
		return resp
	}
	if !c.enter() {
		return fail(kerr.NotCoordinator)
	}
	defer c.wg.Done()
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID)
	case c.isLoading(req.Group):
		return fail(kerr.CoordinatorLoadInProgress)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout)
	}

	ch := make(chan joinResult, 1)
	g := c.lockLive(req.Group, req.MemberID == "")
	if g == nil {
		// A member id for a group that does not exist.
		return fail(kerr.UnknownMemberID)
	}
	var (
		res   joinResult
		ready bool
		wait  func() (joinResult, bool)
	)
	if req.MemberID == "" {
		res, ready, wait = g.joinUnknown(ctx, req, ch)
	} else {
		res, ready = g.joinKnown(req, clientFrom(ctx), ch)
	}
	g.maybeDrop()
	g.mu.Unlock()

	switch {
	case wait != nil:
		res, _ = wait()
	case !ready:
		res = c.awaitJoin(ctx, ch, req.MemberID)
	}
	c.logger.Debug("join group", zap.String("group", req.Group), zap.String("member", res.memberID), zap.Int16("error-code", res.errorCode), zap.Int32("generation", res.generation))
	return fillJoin(resp, res)
}

// awaitJoin waits for the member's join response.
func (c *Coordinator) awaitJoin(ctx context.Context, ch chan joinResult, memberID string) joinResult {
	select {
	case res := <-ch:
		return res
	case <-ctx.Done():
		return joinResult{errorCode: kerr.RebalanceInProgress.Code, memberID: memberID, generation: -1}
	case <-c.ctx.Done():
		return joinResult{errorCode: kerr.NotCoordinator.Code, memberID: memberID, generation: -1}
	}
}

func fillJoin(resp *kmsg.JoinGroupResponse, res joinResult) *kmsg.JoinGroupResponse {
	resp.ErrorCode = res.errorCode
	resp.MemberID = res.memberID
	resp.Generation = res.generation
	if res.errorCode != 0 {
		if resp.Generation == 0 {
			resp.Generation = -1
		}
		return resp
	}
	if resp.Version >= 7 {
		pt := res.protocolType
		resp.ProtocolType = &pt
	}
	p := res.protocol
	resp.Protocol = &p
	resp.LeaderID = res.leader
	resp.Members = res.members
	if resp.Members == nil {
		resp.Members = []kmsg.JoinGroupResponseMember{}
	}
	return resp
}

// rebalanceTimeoutOf is the request's rebalance timeout; v0 has none and
// uses the session timeout, as Kafka.
func rebalanceTimeoutOf(req *kmsg.JoinGroupRequest) time.Duration {
	if req.Version == 0 || req.RebalanceTimeoutMillis < 0 {
		return time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	}
	return time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
}

// newMemberID returns "<clientID>-<uuid>", as Kafka.
func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", clientID, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// accepting reports whether a new member fits under group.max.size.
func (g *group) accepting() bool {
	return len(g.members)+len(g.pending) < g.c.cfg.MaxGroupSize
}

// joinUnknown handles a join without member id (Kafka's
// doNewMemberJoinGroup). g.mu is held. It returns a result when the
// response is ready, or wait, to be called without the lock, for a static
// member replacement that must persist the group first; otherwise the
// member awaits the rebalance on ch.
func (g *group) joinUnknown(ctx context.Context, req *kmsg.JoinGroupRequest, ch chan joinResult) (res joinResult, ready bool, wait func() (joinResult, bool)) {
	fail := func(e *kerr.Error) (joinResult, bool, func() (joinResult, bool)) {
		return joinResult{errorCode: e.Code, generation: -1}, true, nil
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		return fail(kerr.InconsistentGroupProtocol)
	}
	client := clientFrom(ctx)
	id := newMemberID(client.ID)
	if req.InstanceID != nil {
		if oldID, ok := g.static[*req.InstanceID]; ok {
			return g.replaceStatic(ctx, req, g.members[oldID], id, client, ch)
		}
	}
	if !g.accepting() {
		return fail(kerr.GroupMaxSizeReached)
	}
	if req.InstanceID == nil && req.Version >= 4 {
		// KIP-394: hand out the id and wait for the member to come back
		// with it, so a client that never sees this response leaves no
		// member behind.
		g.addPending(id, time.Duration(req.SessionTimeoutMillis)*time.Millisecond)
		return joinResult{errorCode: kerr.MemberIDRequired.Code, memberID: id, generation: -1}, true, nil
	}
	g.addMember(g.newMember(id, req, client, ch))
	return joinResult{}, false, nil
}

func (g *group) newMember(id string, req *kmsg.JoinGroupRequest, client ClientInfo, ch chan joinResult) *member {
	return &member{
		id:               id,
		instanceID:       req.InstanceID,
		clientID:         client.ID,
		clientHost:       client.Host,
		protocolType:     req.ProtocolType,
		protocols:        req.Protocols,
		sessionTimeout:   time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		rebalanceTimeout: rebalanceTimeoutOf(req),
		join:             ch,
	}
}

// joinKnown handles a join with a member id (Kafka's
// doCurrentMemberJoinGroup). g.mu is held.
func (g *group) joinKnown(req *kmsg.JoinGroupRequest, client ClientInfo, ch chan joinResult) (joinResult, bool) {
	fail := func(e *kerr.Error) (joinResult, bool) {
		return joinResult{errorCode: e.Code, memberID: req.MemberID, generation: -1}, true
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		return fail(kerr.InconsistentGroupProtocol)
	}
	if _, ok := g.pending[req.MemberID]; ok {
		if req.InstanceID != nil {
			// Static members are never pending.
			return fail(kerr.UnknownMemberID)
		}
		g.pending[req.MemberID].Stop()
		delete(g.pending, req.MemberID)
		g.addMember(g.newMember(req.MemberID, req, client, ch))
		return joinResult{}, false
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return fail(err)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		g.updateMember(m, req, ch)
		return joinResult{}, false
	case stateCompletingRebalance:
		if m.matches(req.Protocols) {
			// The member lost its join response: send it again.
			res := g.currentJoinResult(m.id)
			if m.id == g.leader {
				res.members = g.leaderMembers()
			}
			return res, true
		}
		g.updateMember(m, req, ch)
		return joinResult{}, false
	case stateStable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			// The leader rejoining asks for a new assignment (for
			// example, topics it subscribes to changed).
			g.updateMember(m, req, ch)
			return joinResult{}, false
		}
		g.scheduleHeartbeat(m)
		return g.currentJoinResult(m.id), true
	default:
		return fail(kerr.UnknownMemberID)
	}
}

// replaceStatic gives a static member that rejoined without its member
// id (a restarted process) the new id newID (KIP-345). The old id is
// fenced. In Stable, if the selected protocol and the member's
// subscription are unchanged, the member keeps its assignment without a
// rebalance once the group is persisted; otherwise the group rebalances.
// g.mu is held.
func (g *group) replaceStatic(ctx context.Context, req *kmsg.JoinGroupRequest, old *member, newID string, client ClientInfo, ch chan joinResult) (joinResult, bool, func() (joinResult, bool)) {
	previousLeader := g.leader
	oldSubscription := subscriptionOf(g.protocolType, old.metadataFor(g.protocol))
	g.logger().Info("static member rejoined with a new member id",
		zap.String("instance-id", *req.InstanceID), zap.String("old-member", old.id), zap.String("member", newID))

	m := &member{
		id:               newID,
		instanceID:       req.InstanceID,
		clientID:         client.ID,
		clientHost:       client.Host,
		protocolType:     req.ProtocolType,
		protocols:        req.Protocols,
		sessionTimeout:   time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		rebalanceTimeout: rebalanceTimeoutOf(req),
		assignment:       old.assignment,
		joinOrder:        old.joinOrder,
	}
	// Fence the old id: its blocked calls learn it first.
	g.stopHeartbeat(old)
	if old.join != nil {
		old.join <- joinResult{errorCode: kerr.FencedInstanceID.Code, memberID: old.id, generation: -1}
		old.join = nil
	}
	if old.sync != nil {
		old.sync <- syncResult{errorCode: kerr.FencedInstanceID.Code}
		old.sync = nil
	}
	delete(g.members, old.id)
	g.members[newID] = m
	g.static[*req.InstanceID] = newID
	if g.leader == old.id {
		g.leader = newID
	}
	if _, ok := g.pendingSync[old.id]; ok {
		delete(g.pendingSync, old.id)
		g.pendingSync[newID] = struct{}{}
	}
	g.scheduleHeartbeat(m)

	switch g.state {
	case stateStable:
		newSubscription := subscriptionOf(g.protocolType, m.metadataFor(g.protocol))
		if g.selectProtocol() == g.protocol && sameTopics(oldSubscription, newSubscription) {
			return g.persistStaticReplacement(ctx, m, previousLeader)
		}
		m.join = ch
		g.prepareRebalance("static member " + *req.InstanceID + " rejoined with a changed subscription")
	case stateCompletingRebalance:
		// The leader may be assigning to the old id: start over.
		m.join = ch
		g.prepareRebalance("static member " + *req.InstanceID + " rejoined while the group was completing a rebalance")
	default:
		m.join = ch
		g.tryCompleteJoin()
	}
	return joinResult{}, false, nil
}

// sameTopics compares two subscriptions; unknown ones (nil) are equal
// only to each other's absence of knowledge, which is treated as equal:
// a non-consumer protocol's metadata is opaque.
func sameTopics(a, b map[string]struct{}) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if len(a) != len(b) {
		return false
	}
	for t := range a {
		if _, ok := b[t]; !ok {
			return false
		}
	}
	return true
}

// persistStaticReplacement writes the group with the static member's new
// id and answers it with the current generation once durable. The
// response names the previous leader so the member does not take itself
// for the leader and assign in a Stable group (as Kafka). g.mu is held;
// the returned wait runs without it.
func (g *group) persistStaticReplacement(ctx context.Context, m *member, previousLeader string) (joinResult, bool, func() (joinResult, bool)) {
	res := g.currentJoinResult(m.id)
	res.leader = previousLeader
	p, base, err := g.appendRecords([]record{g.metadataRecord(nil)})
	if err != nil {
		return joinResult{errorCode: g.c.storageError(err, "group metadata").Code, memberID: m.id, generation: -1}, true, nil
	}
	c := g.c
	return joinResult{}, false, func() (joinResult, bool) {
		if err := c.waitCommitted(ctx, p, base); err != nil {
			return joinResult{errorCode: c.storageError(err, "group metadata").Code, memberID: m.id, generation: -1}, true
		}
		return res, true
	}
}
