package wire

// DescribeShareGroupOffsets (key 90), versions 0-1.
//
// Returns the start offset (SPSO), leader epoch and (v1) lag of share
// groups' share-partitions, read from their durable state through the
// share state store: of the named topics' partitions, or (topics null) of
// every topic the group was ever assigned. A partition without state has
// start offset -1 and lag -1. It may wait on the state store and the
// partitions' leaders, so it runs in reply.finish.
//
// Version notes: v1 (KIP-1226) adds the lag, as Kafka computes it: the
// partition's high watermark (from its leader: ListOffsets when another
// node leads it) minus the start offset minus the offsets after it already
// acknowledged or archived (ReadShareGroupStateSummary v1's
// DeliveryCompleteCount). A high watermark that cannot be read is the
// partition's error.

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
