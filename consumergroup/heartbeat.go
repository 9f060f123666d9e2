package consumergroup

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// Heartbeat keeps a member's session alive; it does not block.
//
// During PreparingRebalance the answer is REBALANCE_IN_PROGRESS (the
// member must rejoin); during CompletingRebalance it is NONE (members
// may heartbeat between join and sync). While the group loads the answer
// is NONE, as Kafka: the member's session will be checked once loaded.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !c.enter() {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	defer c.wg.Done()
	resp.ErrorCode = c.heartbeat(req)
	c.logger.Debug("heartbeat", zap.String("group", req.Group), zap.String("member", req.MemberID), zap.Int32("generation", req.Generation), zap.Int16("error-code", resp.ErrorCode))
	return resp
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	switch {
	case req.Group == "":
		return kerr.InvalidGroupID.Code
	case c.isLoading(req.Group):
		return 0
	}
	g := c.lockLive(req.Group, false)
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	defer g.mu.Unlock()
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return err.Code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[req.MemberID]
	switch g.state {
	case stateEmpty:
		return kerr.UnknownMemberID.Code
	case statePreparingRebalance:
		g.scheduleHeartbeat(m)
		return kerr.RebalanceInProgress.Code
	default: // CompletingRebalance, Stable
		g.scheduleHeartbeat(m)
		return 0
	}
}
