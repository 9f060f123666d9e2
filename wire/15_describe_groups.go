package wire

// DescribeGroups (key 15), versions 0-5.
//
// Describes groups: state, protocol type and name, and each member's id,
// instance id, client id and host, metadata and assignment. It reads the
// coordinator's state and is answered at once.
//
// A share group is described as Dead, as Kafka does before v6 for groups
// that are not classic (ShareGroupDescribe describes it).
//
// Deviations: authorized operations (v3+) are not computed (no ACLs): the
// field keeps its "not requested" value.
//
// Version notes: v1 throttle; v2 same as v1; v3 authorized operations
// (KIP-430); v4 group instance id (KIP-345); v5 flexible. v6 (KIP-1043:
// GROUP_ID_NOT_FOUND for unknown groups, error messages) is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeGroups(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return reply{resp: s.groups.DescribeGroups(ctx, kreq.(*kmsg.DescribeGroupsRequest))}
}
