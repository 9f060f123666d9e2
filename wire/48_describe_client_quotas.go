package wire

// DescribeClientQuotas (key 48), versions 0-1.
//
// Lists the client quotas (KIP-546) whose entities match every component
// filter: EXACT a name, DEFAULT the default, ANY either; Strict leaves out
// entities with components the filters do not name. Any node answers from
// its view of the metadata. A filter of an unknown entity type or match
// type, an EXACT match without a name, or ip quotas (not supported) is
// INVALID_REQUEST with a message.
//
// Version notes: v1 flexible.

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/quota"
)

func handleDescribeClientQuotas(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	filters := make([]quota.Filter, 0, len(req.Components))
	for _, c := range req.Components {
		filters = append(filters, quota.Filter{Type: c.EntityType, Match: int8(c.MatchType), Name: c.Match})
	}
	matched, err := s.cluster.ClientQuotas().Match(filters, req.Strict)
	if err != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		return reply{resp: resp}
	}
	for _, q := range matched {
		e := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, c := range q.Entity.Components() {
			e.Entity = append(e.Entity, kmsg.DescribeClientQuotasResponseEntryEntity{Type: c.Type, Name: c.Name})
		}
		keys := make([]string, 0, len(q.Values))
		for k := range q.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e.Values = append(e.Values, kmsg.DescribeClientQuotasResponseEntryValue{Key: k, Value: q.Values[k]})
		}
		resp.Entries = append(resp.Entries, e)
	}
	return reply{resp: resp}
}
