package wire

// DeleteGroups (key 42), versions 0-2.
//
// Deletes empty groups and their committed offsets (tombstones written to
// __consumer_offsets); a group with members is NON_EMPTY_GROUP. It waits
// for the tombstones to be durable, so it runs in reply.finish.
//
// Version notes: v1 throttle; v2 flexible. v3 (KIP-1043) is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteGroups(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	return reply{finish: func(ctx context.Context) kmsg.Response { return s.groups.DeleteGroups(ctx, req) }}
}
