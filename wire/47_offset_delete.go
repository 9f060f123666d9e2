package wire

// OffsetDelete (key 47), versions 0-0.
//
// Deletes a group's committed offsets of partitions that no member of the
// group consumes (GROUP_SUBSCRIBED_TO_TOPIC otherwise), KIP-496. It waits
// for the tombstones to be durable, so it runs in reply.finish.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetDelete(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	return reply{finish: func(ctx context.Context) kmsg.Response { return s.groups.OffsetDelete(ctx, req) }}
}
