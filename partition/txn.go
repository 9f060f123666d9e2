package partition

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
