package partition

import (
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/log"
)

// ErrCorruptEntry reports batches that do not parse back to back, or a log
// append time below -1. Wrapped errors say which.
var ErrCorruptEntry = errors.New("partition: corrupt replicated entry")

// Entry is one produce request as the leader accepted it (Prepare), with
// the two values only the leader may choose. Apply turns it into log
// batches the same way on every replica. A replicated partition proposes
// each of its batches as a Raft entry of its own (replication/raftgroup)
// and applies them with ApplyStored.
type Entry struct {
	// Batches holds one or more v2 record batches, concatenated, as the
	// producer sent them. Apply stamps base offset, leader epoch and
	// LogAppendTime into them in place. An Entry from Prepare aliases the
	// request.
	Batches []byte
	// LeaderEpoch is the leader epoch Apply writes into every batch: the
	// Raft term of the leader that prepared the entry.
	LeaderEpoch int32
	// LogAppendTime is the broker time in milliseconds that Apply writes as
	// every batch's max timestamp, read once from the leader's clock under
	// message.timestamp.type LogAppendTime; -1 under CreateTime.
	LogAppendTime int64
}

// entryBatch parses the header of batch n, at b[pos:], and checks that the
// batch is whole and its offset delta usable. Errors wrap ErrCorruptEntry.
func entryBatch(b []byte, pos, n int) (log.BatchHeader, error) {
	h, err := log.ParseBatchHeader(b[pos:])
	switch {
	case err != nil:
		return h, fmt.Errorf("%w: batch %d at byte %d: %w", ErrCorruptEntry, n, pos, err)
	case h.Size() > len(b)-pos:
		return h, fmt.Errorf("%w: batch %d of %d bytes, %d left", ErrCorruptEntry, n, h.Size(), len(b)-pos)
	case h.LastOffsetDelta < 0:
		return h, fmt.Errorf("%w: batch %d has lastOffsetDelta %d", ErrCorruptEntry, n, h.LastOffsetDelta)
	}
	return h, nil
}
