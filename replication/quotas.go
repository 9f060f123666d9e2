package replication

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/replication/meta"
	"github.com/sluice-io/sluice/replication/quota"
)

// ClientQuotas returns the client quotas of this node's view of the
// metadata. The Set is never modified; safe for concurrent use, and it
// takes no lock: the protocol server asks on every request.
func (c *Cluster) ClientQuotas() quota.Set {
	if q := c.quotas.Load(); q != nil {
		return *q
	}
	return nil
}

// AlterClientQuotas validates changes (quota.Validate: known keys,
// positive values) and, unless validateOnly, proposes them as one
// metadata command; it returns once this node's view reflects them. Only
// the metadata leader changes them: elsewhere the error unwraps to
// kerr.NotController. An invalid change fails them all with
// kerr.InvalidRequest (the protocol handler reports per entity before).
func (c *Cluster) AlterClientQuotas(ctx context.Context, changes []quota.Change, validateOnly bool) error {
	if c.isClosed() {
		return ErrClosed
	}
	if err := c.controller(); err != nil {
		return err
	}
	for _, ch := range changes {
		if err := quota.Validate(ch); err != nil {
			return fmt.Errorf("%w: %w", err, kerr.InvalidRequest)
		}
	}
	if validateOnly || len(changes) == 0 {
		return nil
	}
	res, err := c.propose(ctx, &meta.AlterClientQuotas{Changes: changes})
	if err != nil {
		return err
	}
	return res.Err
}
