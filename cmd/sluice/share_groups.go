package main

import (
	"context"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/consumergroup/sharestate"
)

// shareStateStore adapts the share coordinator's Persister to the group
// coordinator's ShareStateStore (consumergroup cannot import sharestate,
// which builds on it): the key and summary types have the same fields.
type shareStateStore struct {
	persister sharestate.Persister
}

var _ consumergroup.ShareStateStore = shareStateStore{}

func (s shareStateStore) Initialize(ctx context.Context, key consumergroup.ShareStateKey, stateEpoch int32, startOffset int64) error {
	return s.persister.Initialize(ctx, sharestate.Key(key), stateEpoch, startOffset)
}

func (s shareStateStore) ReadSummary(ctx context.Context, key consumergroup.ShareStateKey) (consumergroup.ShareStateSummary, error) {
	sum, err := s.persister.ReadSummary(ctx, sharestate.Key(key))
	return consumergroup.ShareStateSummary(sum), err
}

func (s shareStateStore) Delete(ctx context.Context, key consumergroup.ShareStateKey) error {
	return s.persister.Delete(ctx, sharestate.Key(key))
}
