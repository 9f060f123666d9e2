package wire

// ShareGroupHeartbeat (key 76), versions 1-1.
//
// A share group member's heartbeat (KIP-932): join with member epoch 0
// (the member id is the client's own), heartbeat with the current epoch,
// leave with -1. The answer carries the member epoch, the heartbeat
// interval and, when it changed or the request was a full one, the
// member's assignment by topic id. A change of the group epoch is durable
// before the answer, so it runs in reply.finish.
//
// Version notes: v0 was Kafka 4.0's early access, removed in 4.1; v1 is
// the first stable version and the only one served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup"
)

func handleShareGroupHeartbeat(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ShareGroupHeartbeatRequest)
	client := requestClientFrom(ctx)
	sg := s.shareGroups()
	if sg == nil {
		resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return reply{resp: resp}
	}
	return reply{finish: func(ctx context.Context) kmsg.Response {
		// The coordinator records the member's client for
		// ShareGroupDescribe.
		return sg.ShareGroupHeartbeat(consumergroup.WithClient(ctx, client.id, client.host), req)
	}}
}
