package wire

// SyncGroup (key 14), versions 0-5.
//
// The leader sends the assignment it computed; every member blocks until
// the assignment is known and gets its own. It runs in reply.finish, so
// the connection's reader goes on reading.
//
// Version notes: v1 throttle; v2 same as v1; v3 group instance id
// (KIP-345); v4 flexible; v5 protocol type and name, checked against the
// group's (KIP-559).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSyncGroup(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.SyncGroupRequest)
	return reply{finish: func(ctx context.Context) kmsg.Response {
		// A follower's sync waits for the leader's: not past shutdown.
		ctx, stop := s.untilDrained(ctx)
		defer stop()
		return s.groups.SyncGroup(ctx, req)
	}}
}
