package wire

// AlterShareGroupOffsets (key 91), versions 0-0.
//
// Sets the start offset of share-partitions of an empty share group
// (created if it does not exist): each state is initialized again with a
// higher state epoch, dropping its in-flight records and delivery counts
// and fencing the live share-partition, which reloads. NON_EMPTY_GROUP
// while the group has members. It waits on the state store, so it runs in
// reply.finish.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterShareGroupOffsets(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.AlterShareGroupOffsetsRequest)
	sg := s.shareGroups()
	if sg == nil {
		resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return reply{resp: resp}
	}
	return reply{finish: func(ctx context.Context) kmsg.Response { return sg.AlterShareGroupOffsets(ctx, req) }}
}
