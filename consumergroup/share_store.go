package consumergroup

import "context"

// ShareStateKey names one share-partition: share group Group's view of
// partition Partition of the topic with id TopicID (sharestate.Key).
type ShareStateKey struct {
	Group     string
	TopicID   [16]byte
	Partition int32
}

// ShareStateSummary is what the coordinator reads of a share-partition's
// durable state: its state epoch (-1 when it has none: then StartOffset
// is -1 too), the data partition leader epoch of its last read or write,
// and its start offset.
type ShareStateSummary struct {
	StateEpoch  int32
	LeaderEpoch int32
	StartOffset int64
}

// ShareStateStore is what the coordinator needs of the share-partition
// state store (package consumergroup/sharestate's Persister, which
// imports this package: cmd/sluice adapts one to the other). Every method
// returns once the change is durable, or an error; a *kerr.Error is
// answered with its code. Safe for concurrent use.
type ShareStateStore interface {
	// Initialize creates or resets key's state at startOffset with state
	// epoch stateEpoch, which must be above the stored one
	// (kerr.FencedStateEpoch otherwise).
	Initialize(ctx context.Context, key ShareStateKey, stateEpoch int32, startOffset int64) error
	// ReadSummary returns key's state epoch, leader epoch and start
	// offset without fencing anyone.
	ReadSummary(ctx context.Context, key ShareStateKey) (ShareStateSummary, error)
	// Delete removes key's state.
	Delete(ctx context.Context, key ShareStateKey) error
}

// shareStoreBox holds a ShareStateStore in an atomic.Pointer.
type shareStoreBox struct{ store ShareStateStore }

// SetShareStates sets the share-partition state store the share group
// APIs use (DeleteGroups of a share group, the share group offset APIs),
// for a store built after the coordinator (cmd/sluice builds the share
// coordinator's Persister later). Safe for concurrent use.
func (c *Coordinator) SetShareStates(s ShareStateStore) {
	c.states.Store(&shareStoreBox{s})
}

// persister returns the share-partition state store, nil when none is
// set.
func (c *Coordinator) persister() ShareStateStore {
	if b := c.states.Load(); b != nil {
		return b.store
	}
	return nil
}
