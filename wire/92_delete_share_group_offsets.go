package wire

// DeleteShareGroupOffsets (key 92), versions 0-0.
//
// Deletes the share-partition states of the named topics of an empty
// share group; the group starts them again from share.auto.offset.reset.
// NON_EMPTY_GROUP while the group has members. It waits on the state
// store, so it runs in reply.finish.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteShareGroupOffsets(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DeleteShareGroupOffsetsRequest)
	sg := s.shareGroups()
	if sg == nil {
		resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return reply{resp: resp}
	}
	return reply{finish: func(ctx context.Context) kmsg.Response { return sg.DeleteShareGroupOffsets(ctx, req) }}
}
