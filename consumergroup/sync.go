package consumergroup

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// SyncGroup blocks until the leader's assignment is known (or ctx ends).
//
// The leader's assignment is persisted (group metadata record) before
// anyone gets theirs, so the generation and static members survive a
// restart. While the group loads the answer is REBALANCE_IN_PROGRESS, as
// Kafka (the member rejoins). When ctx ends first the answer is
// REBALANCE_IN_PROGRESS and the member no longer counts as waiting; after
// Close it is NOT_COORDINATOR.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if !c.enter() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	defer c.wg.Done()
	res := c.syncGroup(ctx, req)
	c.logger.Debug("sync group", zap.String("group", req.Group), zap.String("member", req.MemberID), zap.Int32("generation", req.Generation), zap.Int16("error-code", res.errorCode))
	resp.ErrorCode = res.errorCode
	if res.errorCode == 0 {
		resp.MemberAssignment = res.assignment
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
		if req.Version >= 5 {
			pt, p := res.protocolType, res.protocol
			resp.ProtocolType, resp.Protocol = &pt, &p
		}
	}
	return resp
}

func (c *Coordinator) syncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) syncResult {
	fail := func(e *kerr.Error) syncResult { return syncResult{errorCode: e.Code} }
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID)
	case c.isLoading(req.Group):
		return fail(kerr.RebalanceInProgress)
	}
	g := c.lockLive(req.Group, false)
	if g == nil {
		return fail(kerr.UnknownMemberID)
	}
	res, ch, persist := g.sync(req)
	g.mu.Unlock()
	if persist != nil {
		persist(ctx)
	}
	if ch == nil {
		return res
	}
	select {
	case res := <-ch:
		return res
	case <-c.ctx.Done():
		return fail(kerr.NotCoordinator)
	case <-ctx.Done():
		// Stop counting the member as waiting, so its session can expire.
		g.mu.Lock()
		if m, ok := g.members[req.MemberID]; ok && m.sync == ch {
			m.sync = nil
		}
		g.mu.Unlock()
		select {
		case res := <-ch:
			return res
		default:
			return fail(kerr.RebalanceInProgress)
		}
	}
}

// sync validates a SyncGroup (Kafka's doSyncGroup); g.mu is held. It
// returns a ready result, or the channel the member waits on; persist,
// when set, must run without the lock: it stores the leader's assignment
// and hands it out.
func (g *group) sync(req *kmsg.SyncGroupRequest) (syncResult, chan syncResult, func(context.Context)) {
	fail := func(e *kerr.Error) (syncResult, chan syncResult, func(context.Context)) {
		return syncResult{errorCode: e.Code}, nil, nil
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return fail(err)
	}
	switch {
	case req.Generation != g.generation:
		return fail(kerr.IllegalGeneration)
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType:
		return fail(kerr.InconsistentGroupProtocol)
	case req.Protocol != nil && *req.Protocol != g.protocol:
		return fail(kerr.InconsistentGroupProtocol)
	}
	m := g.members[req.MemberID]
	delete(g.pendingSync, m.id)
	switch g.state {
	case statePreparingRebalance:
		return fail(kerr.RebalanceInProgress)
	case stateStable:
		g.scheduleHeartbeat(m)
		return syncResult{assignment: m.assignment, protocolType: g.protocolType, protocol: g.protocol}, nil, nil
	case stateCompletingRebalance:
	default:
		return fail(kerr.UnknownMemberID)
	}

	ch := make(chan syncResult, 1)
	if m.sync != nil {
		m.sync <- syncResult{errorCode: kerr.RebalanceInProgress.Code}
	}
	m.sync = ch
	if m.id != g.leader {
		return syncResult{}, ch, nil
	}

	// The leader: persist the assignment, then hand it out.
	assignments := make(map[string][]byte, len(g.members))
	for _, a := range req.GroupAssignment {
		if _, ok := g.members[a.MemberID]; ok {
			assignments[a.MemberID] = a.MemberAssignment
		}
	}
	generation := g.generation
	p, base, err := g.appendRecords([]record{g.metadataRecord(assignments)})
	if err != nil {
		code := g.c.storageError(err, "group assignment").Code
		g.failSyncs(code)
		g.prepareRebalance("failed to store the group's assignment")
		return syncResult{}, ch, nil
	}
	c := g.c
	return syncResult{}, ch, func(ctx context.Context) {
		// The assignment is handed out whatever happens to the leader's
		// request, so wait with the coordinator's lifetime.
		c.afterCommit(c.ctx, p, base, func(err error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.state != stateCompletingRebalance || g.generation != generation {
				return
			}
			if err != nil {
				g.failSyncs(c.storageError(err, "group assignment").Code)
				g.prepareRebalance("failed to store the group's assignment")
				return
			}
			for _, m := range g.members {
				m.assignment = assignments[m.id]
			}
			g.transition(stateStable)
			for _, m := range g.members {
				if m.sync != nil {
					m.sync <- syncResult{assignment: m.assignment, protocolType: g.protocolType, protocol: g.protocol}
					m.sync = nil
				}
			}
			g.logger().Info("group stable", zap.Int32("generation", g.generation), zap.String("protocol", g.protocol), zap.Int("members", len(g.members)))
		})
	}
}
