package wire

// DescribeShareGroupOffsets (key 90), versions 0-0.
//
// Returns the start offset (SPSO) and leader epoch of share groups'
// share-partitions, read from their durable state through the share state
// store: of the named topics' partitions, or (topics null) of every topic
// the group was ever assigned. A partition without state has start
// offset -1. It may wait on the state store, so it runs in reply.finish.
//
// Version notes: v1 (KIP-1226) adds the lag, which needs the partition's
// high watermark on its leader; it is not served (clients compute the lag
// from ListOffsets, as `sluice share-group describe` does).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeShareGroupOffsets(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DescribeShareGroupOffsetsRequest)
	sg := s.shareGroups()
	if sg == nil {
		resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
		for _, g := range req.Groups {
			rg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			rg.GroupID, rg.ErrorCode = g.GroupID, kerr.UnsupportedVersion.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return reply{resp: resp}
	}
	return reply{finish: func(ctx context.Context) kmsg.Response { return sg.DescribeShareGroupOffsets(ctx, req) }}
}
