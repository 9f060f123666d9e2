package wire

// ShareGroupDescribe (key 77), versions 1-1.
//
// Describes share groups (KIP-932): state, group and assignment epoch,
// assignor, and each member's epoch, client, rack, subscription and
// assignment. It reads the coordinator's state and is answered at once.
//
// Deviations: authorized operations are all operations (no ACLs).
//
// Version notes: v0 was Kafka 4.0's early access, removed in 4.1; v1 is
// the first stable version and the only one served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleShareGroupDescribe(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ShareGroupDescribeRequest)
	sg := s.shareGroups()
	if sg == nil {
		resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
		for _, id := range req.GroupIDs {
			g := kmsg.NewShareGroupDescribeResponseGroup()
			g.GroupID, g.ErrorCode = id, kerr.UnsupportedVersion.Code
			resp.Groups = append(resp.Groups, g)
		}
		return reply{resp: resp}
	}
	return reply{resp: sg.ShareGroupDescribe(ctx, req)}
}
