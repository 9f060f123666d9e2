package consumergroup

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// LeaveGroup removes members (batched, v3+).
//
// v0-2 name one member by id; its error is the response's. v3+ name
// members by member id and/or group.instance.id; each gets its own error
// and the top-level error is NONE unless the whole request failed. A
// member named by instance id alone (an admin removing a static member)
// is removed whatever its current member id. Leaving triggers a
// rebalance.
func (c *Coordinator) LeaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	members := req.Members
	if req.Version <= 2 {
		members = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	top := c.leaveGroup(req.Group, members, resp)
	if req.Version <= 2 {
		if top == 0 && len(resp.Members) == 1 {
			top = resp.Members[0].ErrorCode
		}
		resp.Members = nil
	}
	resp.ErrorCode = top
	return resp
}

func (c *Coordinator) leaveGroup(id string, members []kmsg.LeaveGroupRequestMember, resp *kmsg.LeaveGroupResponse) int16 {
	if !c.enter() {
		return kerr.NotCoordinator.Code
	}
	defer c.wg.Done()
	switch {
	case id == "":
		return kerr.InvalidGroupID.Code
	case c.isLoading(id):
		return kerr.CoordinatorLoadInProgress.Code
	}
	add := func(lm kmsg.LeaveGroupRequestMember, code int16) {
		resp.Members = append(resp.Members, kmsg.LeaveGroupResponseMember{MemberID: lm.MemberID, InstanceID: lm.InstanceID, ErrorCode: code})
	}
	g := c.lockLive(id, false)
	if g == nil {
		for _, lm := range members {
			add(lm, kerr.UnknownMemberID.Code)
		}
		return 0
	}
	defer g.mu.Unlock()
	for _, lm := range members {
		code := g.leave(lm)
		c.logger.Debug("leave group", zap.String("group", id), zap.String("member", lm.MemberID), zap.Int16("error-code", code))
		add(lm, code)
	}
	g.maybeDrop()
	return 0
}

// leave removes one member; g.mu is held.
func (g *group) leave(lm kmsg.LeaveGroupRequestMember) int16 {
	reason := "member left the group"
	if lm.Reason != nil && *lm.Reason != "" {
		reason += ": " + *lm.Reason
	}
	switch {
	case lm.MemberID == "":
		if lm.InstanceID == nil {
			return kerr.UnknownMemberID.Code
		}
		id, ok := g.static[*lm.InstanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		g.logger().Info("static member removed", zap.String("member", id), zap.String("instance-id", *lm.InstanceID))
		g.removeMember(g.members[id], reason)
		return 0
	case g.pending[lm.MemberID] != nil:
		g.removePending(lm.MemberID)
		return 0
	}
	if err := g.validateMember(lm.MemberID, lm.InstanceID); err != nil {
		return err.Code
	}
	g.logger().Info("member left", zap.String("member", lm.MemberID), zap.Int32("generation", g.generation))
	g.removeMember(g.members[lm.MemberID], reason)
	return 0
}
