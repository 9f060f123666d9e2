package partition

import (
	"cmp"
	"slices"
)

// TxnMarker is a transaction marker as the transaction coordinator asks a
// partition leader to write it (WriteTxnMarkers): a control batch of
// producer ProducerID at ProducerEpoch that ends the producer's ongoing
// transaction on the partition, committing or aborting it.
type TxnMarker struct {
	ProducerID    int64
	ProducerEpoch int16
	// Commit is true for a COMMIT marker, false for ABORT.
	Commit bool
	// CoordinatorEpoch is the epoch of the transaction coordinator that
	// wrote the marker (the leader epoch of its __transaction_state
	// partition); a marker from an older coordinator is refused
	// (TRANSACTION_COORDINATOR_FENCED).
	CoordinatorEpoch int32
}

// AbortedTxn is an aborted transaction as a read_committed fetch reports
// it: the consumer drops the producer's records from FirstOffset until the
// producer's ABORT marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
}

// ProducerState is one producer's state on a partition, as
// DescribeProducers reports it.
type ProducerState struct {
	ProducerID    int64
	ProducerEpoch int16
	// LastSequence is the last sequence number appended (-1 if none).
	LastSequence int32
	// LastTimestamp is the max timestamp of its last batch (-1 if none).
	LastTimestamp int64
	// CoordinatorEpoch is that of the last marker written for it (-1 if
	// none).
	CoordinatorEpoch int32
	// CurrentTxnStartOffset is the first offset of its ongoing
	// transaction, or -1.
	CurrentTxnStartOffset int64
}

// Producers returns the state of every producer the replica knows, by
// ascending producer id, as DescribeProducers reports it. The slice is the
// caller's. After Close it returns ErrClosed.
func (r *Replica) Producers() ([]ProducerState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return nil, ErrClosed
	}
	out := make([]ProducerState, 0, len(r.producers.entries))
	for id, e := range r.producers.entries {
		p := ProducerState{
			ProducerID:            id,
			ProducerEpoch:         e.epoch,
			LastSequence:          e.lastSequence(),
			LastTimestamp:         -1,
			CoordinatorEpoch:      e.coordinatorEpoch,
			CurrentTxnStartOffset: -1,
		}
		if e.count > 0 {
			p.LastTimestamp = e.batches[e.count-1].timestamp
		}
		if e.lastTimestamp > p.LastTimestamp {
			p.LastTimestamp = e.lastTimestamp
		}
		if e.inTxn {
			p.CurrentTxnStartOffset = e.txnFirstOffset
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out, nil
}
