package consumergroup

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup blocks until the rebalance the member joins completes (or ctx
// ends): the classic protocol's join phase.
//
// A new dynamic member (empty member id, v4+) first gets MEMBER_ID_REQUIRED
// with its id and must join again with it (KIP-394). A static member
// (group.instance.id, KIP-345) that restarts takes over its old member id's
// place; when the group is Stable and its protocols are unchanged it gets
// the current generation back at once, with no rebalance, and the old id is
// fenced.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	fail := func(code int16) *kmsg.JoinGroupResponse {
		r := errJoin(code, req.MemberID)
		r.Version = req.Version
		return r
	}
	sessionTimeout := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalanceTimeout := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 {
		rebalanceTimeout = sessionTimeout
	}
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID.Code)
	case sessionTimeout < c.cfg.MinSessionTimeout || sessionTimeout > c.cfg.MaxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout.Code)
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	client := clientFrom(ctx)

	if code := c.lockGroupRequest(req.Group); code != 0 {
		return fail(code)
	}
	if c.shareGroups[req.Group] != nil {
		// A group id is one type: a share group's cannot be joined as
		// a classic group (Kafka: "Group G is not a classic group").
		c.mu.Unlock()
		return fail(kerr.GroupIDNotFound.Code)
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" && req.InstanceID == nil {
			c.mu.Unlock()
			return fail(kerr.UnknownMemberID.Code)
		}
		g = newGroup(req.Group, time.Now())
		c.groups[req.Group] = g
	}
	if !g.supports(req.ProtocolType, req.Protocols) {
		c.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	fill := func(m *member) {
		m.clientID, m.host = client.id, client.host
		m.sessionTimeout, m.rebalanceTimeout = sessionTimeout, rebalanceTimeout
		m.protocolType = req.ProtocolType
		m.protocols = req.Protocols
	}
	full := func() bool { return len(g.members) >= c.cfg.MaxGroupSize }

	if req.InstanceID != nil {
		oldID, known := g.static[*req.InstanceID]
		if known && req.MemberID != "" && req.MemberID != oldID {
			c.mu.Unlock()
			return fail(kerr.FencedInstanceID.Code)
		}
		if known && req.MemberID == "" {
			// A restarted static member replaces its old member id. A
			// static member naming its current id is an ordinary known
			// member (Kafka's doCurrentMemberJoinGroup), handled below.
			old := g.members[oldID]
			newID := newMemberID(client.id)
			answerJoin(old, errJoin(kerr.FencedInstanceID.Code, oldID))
			answerSync(old, kerr.FencedInstanceID.Code, nil)
			delete(g.members, oldID)
			old.id = newID
			g.members[newID] = old
			g.static[*req.InstanceID] = newID
			if g.leader == oldID {
				g.leader = newID
			}
			fill(old)
			// As Kafka: a restarted static member skips the rebalance when
			// the protocol the group would choose stays the same (its
			// metadata may differ: sticky assignors embed the partitions a
			// member owned, which a restarted client has forgotten).
			if g.state == stateStable && g.vote() == g.protocol {
				r := c.joinResponse(g, old)
				r.Version = req.Version
				if old.id == g.leader {
					// The leader keeps the current assignment (KIP-814).
					r.SkipAssignment = true
				}
				c.armSession(g, old)
				c.persistGroupAsync(g) // the new member id survives a restart
				c.mu.Unlock()
				return r
			}
			return c.joinAndWait(ctx, g, old, req.Version)
		}
		if !known && req.MemberID != "" {
			c.mu.Unlock()
			return fail(kerr.UnknownMemberID.Code)
		}
	}
	if req.InstanceID != nil && req.MemberID == "" {
		if full() {
			c.mu.Unlock()
			return fail(kerr.GroupMaxSizeReached.Code)
		}
		m := &member{id: newMemberID(client.id), instanceID: req.InstanceID}
		fill(m)
		c.addMemberLocked(g, m)
		return c.joinAndWait(ctx, g, m, req.Version)
	}

	if req.MemberID == "" {
		if full() {
			c.mu.Unlock()
			return fail(kerr.GroupMaxSizeReached.Code)
		}
		id := newMemberID(client.id)
		if req.Version >= 4 {
			// KIP-394: the member must come back with its id, so a client
			// that gave up after a timeout leaves no ghost member behind.
			g.pending[id] = time.AfterFunc(sessionTimeout, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				if _, ok := g.pending[id]; ok && c.groups[g.id] == g && c.leadsLocked(g) {
					delete(g.pending, id)
					c.tryCompleteJoinLocked(g)
				}
			})
			c.mu.Unlock()
			r := errJoin(kerr.MemberIDRequired.Code, id)
			r.Version = req.Version
			return r
		}
		m := &member{id: id}
		fill(m)
		c.addMemberLocked(g, m)
		return c.joinAndWait(ctx, g, m, req.Version)
	}

	m := g.members[req.MemberID]
	if m == nil {
		t, ok := g.pending[req.MemberID]
		if !ok {
			c.mu.Unlock()
			return fail(kerr.UnknownMemberID.Code)
		}
		t.Stop()
		delete(g.pending, req.MemberID)
		if full() {
			c.mu.Unlock()
			return fail(kerr.GroupMaxSizeReached.Code)
		}
		m = &member{id: req.MemberID}
		fill(m)
		c.addMemberLocked(g, m)
		return c.joinAndWait(ctx, g, m, req.Version)
	}
	unchanged := sameProtocols(m.protocols, req.Protocols)
	fill(m)
	switch {
	case g.state == stateStable && unchanged && m.id != g.leader:
		// A follower rejoining with nothing new: no rebalance.
		r := c.joinResponse(g, m)
		r.Version = req.Version
		c.armSession(g, m)
		c.mu.Unlock()
		return r
	case g.state == stateCompletingRebalance && unchanged:
		// The member lost its join answer: give it again.
		r := c.joinResponse(g, m)
		r.Version = req.Version
		c.mu.Unlock()
		return r
	}
	return c.joinAndWait(ctx, g, m, req.Version)
}

// joinAndWait puts m into the join phase (starting one if needed), unlocks
// c.mu and waits for the phase to end. c.mu must be held.
func (c *Coordinator) joinAndWait(ctx context.Context, g *group, m *member, version int16) *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	answerJoin(m, errJoin(kerr.RebalanceInProgress.Code, m.id)) // an older join of the same member
	m.joinCh = ch
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	if g.state == statePreparingRebalance {
		c.tryCompleteJoinLocked(g)
	} else {
		c.prepareRebalanceLocked(g, "member "+m.id+" joined")
	}
	c.mu.Unlock()
	select {
	case r := <-ch:
		r.Version = version
		return r
	case <-ctx.Done():
		c.mu.Lock()
		if m.joinCh == ch {
			m.joinCh = nil
			c.armSession(g, m)
		}
		c.mu.Unlock()
		r := errJoin(kerr.RebalanceInProgress.Code, m.id)
		r.Version = version
		return r
	}
}

// SyncGroup blocks until the leader's assignment is known (or ctx ends).
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(code int16) *kmsg.SyncGroupResponse {
		resp.ErrorCode = code
		return resp
	}
	if code := c.lockGroupRequest(req.Group); code != 0 {
		return fail(code)
	}
	g := c.groups[req.Group]
	code := c.checkMemberLocked(g, req.MemberID, req.InstanceID, req.Generation)
	if code == 0 && ((req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol)) {
		code = kerr.InconsistentGroupProtocol.Code
	}
	if code != 0 {
		c.mu.Unlock()
		return fail(code)
	}
	m := g.members[req.MemberID]
	protocolType, protocol := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &protocolType, &protocol
	switch g.state {
	case statePreparingRebalance:
		c.mu.Unlock()
		return fail(kerr.RebalanceInProgress.Code)
	case stateStable:
		resp.MemberAssignment = m.assignment
		c.armSession(g, m)
		c.mu.Unlock()
		return resp
	}
	// CompletingRebalance: wait for the leader's assignment.
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	answerSync(m, kerr.RebalanceInProgress.Code, nil)
	m.syncCh = ch
	c.armSession(g, m)
	if m.id == g.leader {
		assigned := make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			assigned[a.MemberID] = a.MemberAssignment
		}
		for _, o := range g.members {
			o.assignment = assigned[o.id]
		}
		generation := g.generation
		p, batch := c.groupBatchLocked(g)
		w, err := c.appendLocked(p, batch)
		if err == nil {
			c.wg.Add(1)
			c.mu.Unlock()
			err = w.wait(ctx)
			c.wg.Done()
			c.mu.Lock()
		}
		if c.groups[g.id] == g && g.generation == generation && g.state == stateCompletingRebalance {
			if err != nil {
				c.logger.Warn("store group assignment", zapGroup(g.id), zapErr(err))
				for _, o := range g.members {
					o.assignment = nil
					answerSync(o, kerr.CoordinatorNotAvailable.Code, nil)
				}
				c.prepareRebalanceLocked(g, "storing the assignment failed")
			} else {
				g.state = stateStable
				for _, o := range g.members {
					answerSync(o, 0, o.assignment)
				}
				c.logger.Info("group stable", zapGroup(g.id), zapGeneration(g.generation))
			}
		}
	}
	c.mu.Unlock()
	select {
	case r := <-ch:
		resp.ErrorCode, resp.MemberAssignment = r.ErrorCode, r.MemberAssignment
		return resp
	case <-ctx.Done():
		c.mu.Lock()
		if m.syncCh == ch {
			m.syncCh = nil
		}
		c.mu.Unlock()
		return fail(kerr.RebalanceInProgress.Code)
	}
}

// checkMemberLocked applies the checks every request of a member shares:
// the group and member exist, a static member is who it says, and the
// generation is current. It returns 0 or an error code.
func (c *Coordinator) checkMemberLocked(g *group, memberID string, instanceID *string, generation int32) int16 {
	if g == nil || g.state == stateDead {
		return kerr.UnknownMemberID.Code
	}
	if instanceID != nil {
		// Kafka's validateMember: an instance id nobody holds is unknown.
		id, ok := g.static[*instanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if id != memberID {
			return kerr.FencedInstanceID.Code
		}
	}
	if _, ok := g.members[memberID]; !ok {
		return kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	return 0
}

// Heartbeat keeps a member's session alive; it does not block. During a
// join phase it answers REBALANCE_IN_PROGRESS so the member joins again.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if resp.ErrorCode = c.lockGroupRequest(req.Group); resp.ErrorCode != 0 {
		return resp
	}
	defer c.mu.Unlock()
	g := c.groups[req.Group]
	if code := c.checkMemberLocked(g, req.MemberID, req.InstanceID, req.Generation); code != 0 {
		// A member of the previous generation hears about the rebalance
		// first, as in Kafka.
		if code == kerr.IllegalGeneration.Code && g != nil && g.state == statePreparingRebalance {
			code = kerr.RebalanceInProgress.Code
		}
		resp.ErrorCode = code
		return resp
	}
	m := g.members[req.MemberID]
	c.armSession(g, m)
	if g.state == statePreparingRebalance {
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	}
	return resp
}

// LeaveGroup removes members (batched, v3+, by member id or instance id).
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if resp.ErrorCode = c.lockGroupRequest(req.Group); resp.ErrorCode != 0 {
		return resp
	}
	defer c.mu.Unlock()
	g := c.groups[req.Group]
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	for _, l := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = l.MemberID, l.InstanceID
		rm.ErrorCode = c.leaveLocked(g, l.MemberID, l.InstanceID)
		resp.Members = append(resp.Members, rm)
	}
	if req.Version < 3 {
		resp.ErrorCode, resp.Members = resp.Members[0].ErrorCode, nil
	}
	return resp
}

func (c *Coordinator) leaveLocked(g *group, memberID string, instanceID *string) int16 {
	if g == nil || g.state == stateDead {
		return kerr.UnknownMemberID.Code
	}
	if instanceID != nil {
		id, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case memberID != "" && id != memberID:
			return kerr.FencedInstanceID.Code
		}
		memberID = id
	}
	m, ok := g.members[memberID]
	if !ok {
		if t, ok := g.pending[memberID]; ok {
			t.Stop()
			delete(g.pending, memberID)
			c.tryCompleteJoinLocked(g)
			return 0
		}
		return kerr.UnknownMemberID.Code
	}
	c.logger.Info("member left", zapGroup(g.id), zapMember(memberID))
	c.removeMemberLocked(g, m)
	return 0
}
