package wire

// ListGroups (key 16), versions 0-5.
//
// Lists the groups this node coordinates (on a single node: all) with
// their protocol type, state (v4+) and type (v5+), filtered by the states
// and types asked for. Share groups (KIP-932) are listed with type and
// protocol type "share". It is answered at once.
//
// Version notes: v1 throttle; v2 same as v1; v3 flexible; v4 state filter
// and states (KIP-518); v5 type filter and types (KIP-848: "classic" or
// "share").

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListGroups(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return reply{resp: s.groups.ListGroups(ctx, kreq.(*kmsg.ListGroupsRequest))}
}
