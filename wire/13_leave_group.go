package wire

// LeaveGroup (key 13), versions 0-5.
//
// Removes members from a group, which rebalances the rest. It runs in
// reply.finish, after the connection's earlier group requests (a final
// OffsetCommit before leaving must land while the member is still in the
// group).
//
// Version notes: v1 throttle; v2 same as v1; v3 batched members with
// group instance ids (KIP-345); v4 flexible; v5 reason (KIP-800).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleLeaveGroup(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.LeaveGroupRequest)
	return reply{finish: func(ctx context.Context) kmsg.Response { return s.groups.LeaveGroup(ctx, req) }}
}
