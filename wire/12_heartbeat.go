package wire

// Heartbeat (key 12), versions 0-4.
//
// Keeps a member's session alive and tells it when a rebalance is under
// way (REBALANCE_IN_PROGRESS) so it rejoins. It does not block, so it is
// answered on the reader at once.
//
// Version notes: v1 throttle; v2 same as v1; v3 group instance id
// (KIP-345); v4 flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleHeartbeat(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return reply{resp: s.groups.Heartbeat(ctx, kreq.(*kmsg.HeartbeatRequest))}
}
