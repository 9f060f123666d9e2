package wire

// JoinGroup (key 11), versions 0-9.
//
// Joins a member to a group (the classic protocol) and blocks until the
// rebalance it joins completes: the coordinator answers every member at
// once, the leader with all members' metadata. It therefore runs in
// reply.finish, so the connection's reader goes on reading; the writer
// sends later responses of the connection after it, in order.
//
// Version notes: v1 rebalance timeout; v2 throttle; v3 same as v2; v4
// MEMBER_ID_REQUIRED, the member rejoins with the id it is given (KIP-394);
// v5 group instance id, static membership (KIP-345); v6 flexible; v7
// protocol type and name in the response (KIP-559); v8 reason (KIP-800);
// v9 SkipAssignment for server-side assignors (KIP-814; never set here).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup"
)

func handleJoinGroup(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.JoinGroupRequest)
	client := requestClientFrom(ctx)
	return reply{finish: func(ctx context.Context) kmsg.Response {
		// A join waits for the whole rebalance: not past shutdown.
		ctx, stop := s.untilDrained(ctx)
		defer stop()
		// The coordinator records who joined for DescribeGroups.
		return s.groups.JoinGroup(consumergroup.WithClient(ctx, client.id, client.host), req)
	}}
}
