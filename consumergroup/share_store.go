package consumergroup

import (
	"context"
	"sync"
)

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
// its start offset, and the number of offsets at or after it acknowledged
// or archived (KIP-1226; -1 when unknown).
type ShareStateSummary struct {
	StateEpoch            int32
	LeaderEpoch           int32
	StartOffset           int64
	DeliveryCompleteCount int32
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

// ShareEndOffsets is the optional capability of a ShareStateStore that
// DescribeShareGroupOffsets v1 needs for the lag (KIP-1226): a
// partition's high watermark. Without it the lag is -1.
type ShareEndOffsets interface {
	// HighWatermark returns the high watermark of partition of topic as
	// its leader reports it; errors wrap a *kerr.Error (answered with its
	// code) such as kerr.UnknownTopicOrPartition or
	// kerr.LeaderNotAvailable.
	HighWatermark(ctx context.Context, topic string, partition int32) (int64, error)
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

// shareStoreParallelism bounds the state store calls one request makes at
// once: a group's partitions may be many, each call a round trip to the
// partition's share coordinator.
const shareStoreParallelism = 16

// eachParallel runs fn(i) for i in [0, n), at most shareStoreParallelism
// at a time, and returns once every call has.
func eachParallel(n int, fn func(i int)) {
	sem := make(chan struct{}, shareStoreParallelism)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// deleteStates deletes the states of keys through store, in parallel;
// it returns the first error (the others are still attempted).
func deleteStates(ctx context.Context, store ShareStateStore, keys []ShareStateKey) error {
	errs := make([]error, len(keys))
	eachParallel(len(keys), func(i int) { errs[i] = store.Delete(ctx, keys[i]) })
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
