package wire

// OffsetFetch (key 9), versions 0-9.
//
// Returns a group's committed offsets (offset -1 for a partition without
// one), of the partitions asked for or, with null topics (v2+), of every
// partition the group committed. It runs in reply.finish, after the
// connection's earlier requests, so a client that pipelines a fetch behind
// its own commit reads what it committed.
//
// Version notes: v1 offsets from __consumer_offsets (v0 read ZooKeeper in
// Kafka; here both read the same store); v2 all partitions and a top-level
// error; v3 throttle; v4 same as v3; v5 leader epoch (KIP-320); v6
// flexible; v7 RequireStable (KIP-447: a partition with offsets pending
// in an open transaction answers UNSTABLE_OFFSET_COMMIT); v8 several groups per request (KIP-709); v9 member id and
// epoch (KIP-848). v10 (topic ids) is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetFetch(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.OffsetFetchRequest)
	return reply{finish: func(ctx context.Context) kmsg.Response { return s.groups.OffsetFetch(ctx, req) }}
}
