package wire

// AlterClientQuotas (key 49), versions 0-1.
//
// Sets or removes client quotas (KIP-546) of user and client-id entities
// and their defaults: producer_byte_rate, consumer_byte_rate,
// request_percentage. Each entry is checked on its own (an unknown or
// repeated entity type, ip entities, an unknown quota key, a value that
// is not positive: INVALID_REQUEST with a message, the other entries go
// on); the valid ones are applied together as one metadata change, so
// they take effect on every node at once. Only the metadata leader
// applies them: another node forwards the entries to it (forward.go) and
// relays its answers, or answers NOT_CONTROLLER while no leader is known.
// ValidateOnly checks without changing.
//
// Version notes: v1 flexible.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/quota"
)

func handleAlterClientQuotas(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.AlterClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	errs := make([]error, len(req.Entries))
	var changes []quota.Change
	var valid []int
	seen := map[string]bool{}
	for i, entry := range req.Entries {
		components := make([]quota.Component, 0, len(entry.Entity))
		for _, c := range entry.Entity {
			components = append(components, quota.Component{Type: c.Type, Name: c.Name})
		}
		entity, err := quota.FromComponents(components)
		change := quota.Change{Entity: entity}
		for _, op := range entry.Ops {
			change.Ops = append(change.Ops, quota.Op{Key: op.Key, Value: op.Value, Remove: op.Remove})
		}
		if err == nil {
			err = quota.Validate(change)
		}
		if err == nil && seen[entity.Key()] {
			err = fmt.Errorf("entity %s is named more than once in the request", entity)
		}
		if err != nil {
			errs[i] = fmt.Errorf("%w: %w", err, kerr.InvalidRequest)
			continue
		}
		seen[entity.Key()] = true
		changes = append(changes, change)
		valid = append(valid, i)
	}
	if len(changes) > 0 {
		if err := s.cluster.AlterClientQuotas(ctx, changes, req.ValidateOnly); err != nil {
			for _, i := range valid {
				errs[i] = err
			}
		}
	}
	for i, entry := range req.Entries {
		e := kmsg.NewAlterClientQuotasResponseEntry()
		for _, c := range entry.Entity {
			e.Entity = append(e.Entity, kmsg.AlterClientQuotasResponseEntryEntity{Type: c.Type, Name: c.Name})
		}
		e.ErrorCode = s.errorCode(errs[i])
		e.ErrorMessage = errorMessage(errs[i])
		resp.Entries = append(resp.Entries, e)
	}
	s.forwardAlterClientQuotas(ctx, req, resp)
	return reply{resp: resp}
}
