package partition

import (
	"fmt"
	"sync/atomic"

	"github.com/sluice-io/sluice/log"
)

// The leader-epoch cache: which leader epoch wrote which offsets, for
// OffsetForLeaderEpoch (KIP-101, KIP-320). It corresponds to Kafka's
// leader-epoch-checkpoint file, but is not persisted: Open rebuilds it from
// the batch headers (each carries its PartitionLeaderEpoch), and Append
// extends it.
//
//	entries:  {epoch 0, start 0} {epoch 2, start 120} {epoch 5, start 300}
//	offsets:  [0, 120) written in epoch 0, [120, 300) in 2, [300, LEO) in 5
//
// Invariant: entries ascend strictly in both epoch and start offset.

// epochEntry says that epoch's first batch starts at startOffset.
type epochEntry struct {
	epoch       int32
	startOffset int64
}

// epochCache holds the entries as an immutable slice, replaced whole on
// change, so readers never lock. Only the replica's single writer (under
// Replica.mu, or Open before the replica is shared) calls assign.
type epochCache struct {
	entries atomic.Pointer[[]epochEntry]
}

// load returns the current entries; the caller must not modify them.
func (c *epochCache) load() []epochEntry {
	if p := c.entries.Load(); p != nil {
		return *p
	}
	return nil
}

// assign records that a batch of epoch starts at offset. Batches without
// an epoch (-1) are ignored. An epoch below the latest, or an offset below
// the latest start, contradicts the entries after it: they are dropped, as
// Kafka's LeaderEpochFileCache.assign does. It copies only when the epoch
// changes, so the append path pays one atomic load.
func (c *epochCache) assign(epoch int32, offset int64) {
	if epoch < 0 {
		return
	}
	old := c.load()
	if n := len(old); n > 0 && old[n-1].epoch == epoch && old[n-1].startOffset <= offset {
		return
	}
	entries := make([]epochEntry, 0, len(old)+1)
	for _, e := range old {
		if e.epoch >= epoch || e.startOffset >= offset {
			break
		}
		entries = append(entries, e)
	}
	entries = append(entries, epochEntry{epoch: epoch, startOffset: offset})
	c.entries.Store(&entries)
}

// rebuildEpochs fills the cache from every batch header in the log. Called
// by Open before the replica is shared.
func (r *Replica) rebuildEpochs() error {
	err := r.log.BatchHeaders(r.log.StartOffset(), func(h log.BatchHeader) bool {
		r.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset)
		return true
	})
	if err != nil {
		return fmt.Errorf("partition: rebuild leader epochs of %s-%d: %w", r.topic, r.partition, err)
	}
	return nil
}

// EpochEndOffset answers OffsetForLeaderEpoch for one requested epoch, by
// Kafka's rules (LeaderEpochFileCache.endOffsetFor):
//
//   - the latest epoch (the replica's current leader epoch, even before a
//     batch of it is written, as Kafka records an epoch on election):
//     that epoch and the log end offset;
//   - an epoch with a later one known: the largest known epoch <= the
//     requested one and the start offset of the first epoch above the
//     requested one, which is where the requested epoch's log ends;
//   - an epoch below every known epoch (the log start passed them): the
//     requested epoch and the start offset of the first known epoch;
//   - -1, an epoch above the latest, or a log that has no epoch at all:
//     -1 and -1 (UNDEFINED), without error.
//
// Entries wholly below the log start offset are forgotten and the first
// remaining one starts no lower than it, as Kafka's truncateFromStart does.
// err is ErrClosed after Close. Safe for concurrent use with appends.
func (r *Replica) EpochEndOffset(epoch int32) (leaderEpoch int32, endOffset int64, err error) {
	if r.closed.Load() {
		return -1, -1, ErrClosed
	}
	// Start before end: both only grow, so the end loaded later is never
	// below the start.
	start := r.log.StartOffset()
	entries := r.epochs.load()
	end := r.log.NextOffset()
	if current := r.epoch.Load(); len(entries) == 0 || current > entries[len(entries)-1].epoch {
		// The current epoch has written nothing yet: it starts at the end.
		entries = append(entries[:len(entries):len(entries)], epochEntry{epoch: current, startOffset: end})
	}
	// Forget entries whose whole range lies below the log start.
	for len(entries) > 1 && entries[1].startOffset <= start {
		entries = entries[1:]
	}
	if epoch < 0 {
		return -1, -1, nil
	}
	latest := entries[len(entries)-1]
	switch {
	case epoch == latest.epoch:
		return epoch, end, nil
	case epoch > latest.epoch:
		return -1, -1, nil
	}
	// higher is the first entry above epoch; one exists since epoch < latest.
	higher := 0
	for entries[higher].epoch <= epoch {
		higher++
	}
	endOffset = max(entries[higher].startOffset, start)
	if higher == 0 {
		return epoch, endOffset, nil
	}
	return entries[higher-1].epoch, endOffset, nil
}
