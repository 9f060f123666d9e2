package partition

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// AppendResult says where an append landed.
type AppendResult struct {
	// BaseOffset and LastOffset are the offsets of the first record of the
	// first batch and the last record of the last batch. For a duplicate of
	// a retried idempotent batch they are the original's.
	BaseOffset, LastOffset int64
	// LogAppendTime is the broker timestamp applied, or -1 under
	// CreateTime.
	LogAppendTime int64
	// LogStartOffset is the log start offset after the append.
	LogStartOffset int64
	// Duplicate reports that the batch was a retry already in the log and
	// nothing was written.
	Duplicate bool
}

// Append validates the produced record batches in b (one or more,
// concatenated), checks and advances idempotent producer state, assigns
// offsets and the leader epoch, and writes them. b is modified in place
// (header fields) and not retained. It is Prepare followed by Apply under
// one hold of the lock, with the epoch set by SetLeaderEpoch: the
// single-node produce, with nothing left in flight.
//
// Errors are *kerr.Error values a client understands: CorruptMessage (bad
// length, magic, CRC, record count), MessageTooLarge (batch above
// MaxMessageBytes), InvalidRecord, OutOfOrderSequenceNumber,
// InvalidProducerEpoch, UnknownProducerID, InvalidTimestamp and (a keyless
// record in a compacted topic) InvalidRecord, see checkProduced; any other
// error is a storage failure. A rejected request leaves the log untouched. Append does not
// wait for durability: see WaitCommitted. A transactional batch (of a
// producer id) starts or continues its producer's transaction; a
// non-transactional batch of a producer in a transaction is
// InvalidTxnState.
//
// Also RecordListTooLarge for a request above the log's SegmentBytes, as
// Kafka answers. An unknown producer whose first sequence is not 0 gets
// OutOfOrderSequenceNumber (as Kafka does since KIP-360), so
// UnknownProducerID is not returned yet.
//
// The kerr values are returned unwrapped; why a batch was rejected is
// logged at Debug. A control batch is InvalidRecord (only markers written
// through AppendMarker or PrepareMarker are), as is a transactional batch
// without a producer id; a batch of a producer without a base sequence is
// OutOfOrderSequenceNumber (see AppendAsCoordinator). A request
// whose batches are all retries of batches already in the log is a
// duplicate; one that mixes retries with new batches is InvalidRecord.
// A retry of a batch Prepare left in flight is ErrInFlight.
// After Close, Append returns ErrClosed.
func (r *Replica) Append(b []byte) (AppendResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return AppendResult{}, ErrClosed
	}
	e, duplicate, err := r.prepare(b, r.epoch.Load(), false, originClient)
	if err != nil || duplicate.Duplicate {
		return duplicate, err
	}
	return r.apply(e)
}

// AppendAsCoordinator is Append for batches a coordinator writes to its
// internal topic: a batch of a producer id without sequences (base
// sequence -1, as Kafka's group coordinator writes TxnOffsetCommit
// records) is accepted; a transactional one starts or continues its
// producer's transaction, so the producer's marker ends it. The
// single-node counterpart of PrepareAsCoordinator.
func (r *Replica) AppendAsCoordinator(b []byte) (AppendResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return AppendResult{}, ErrClosed
	}
	e, duplicate, err := r.prepare(b, r.epoch.Load(), false, originCoordinator)
	if err != nil || duplicate.Duplicate {
		return duplicate, err
	}
	return r.apply(e)
}

// AppendMarker writes transaction marker m (a control batch stamped with
// the replica's clock) at the log end: the single-node counterpart of
// PrepareMarker, with its errors.
func (r *Replica) AppendMarker(m TxnMarker) (AppendResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return AppendResult{}, ErrClosed
	}
	e, err := r.prepareMarker(m, r.epoch.Load(), false)
	if err != nil {
		return AppendResult{}, err
	}
	return r.apply(e)
}

// validate checks the batch at the start of b as a produced batch of
// origin (a client's or a coordinator's) and returns its header.
func (r *Replica) validate(b []byte, origin origin) (log.BatchHeader, error) {
	h, err := log.ParseBatchHeader(b)
	if err != nil {
		return h, r.reject(kerr.CorruptMessage, err)
	}
	if h.Size() > r.cfg.MaxMessageBytes {
		return h, r.reject(kerr.MessageTooLarge, fmt.Errorf("batch of %d bytes above max.message.bytes %d", h.Size(), r.cfg.MaxMessageBytes))
	}
	if h, err = log.VerifyProducedBatch(b); err != nil {
		return h, r.reject(kerr.CorruptMessage, err)
	}
	switch {
	case h.Control():
		// As Kafka's LogValidator: only the broker writes control
		// batches (PrepareMarker).
		return h, r.reject(kerr.InvalidRecord, fmt.Errorf("control batch from a producer"))
	case h.Transactional() && !h.Idempotent():
		return h, r.reject(kerr.InvalidRecord, fmt.Errorf("transactional batch without a producer id"))
	case h.Idempotent() && h.BaseSequence < 0 && origin != originCoordinator:
		// Kafka answers a sequence that cannot follow with this code;
		// refused here because Apply takes such a batch for a
		// coordinator's.
		return h, r.reject(kerr.OutOfOrderSequenceNumber, fmt.Errorf("batch of producer %d without a base sequence", h.ProducerID))
	}
	if err := r.checkProduced(b, h); err != nil {
		return h, err
	}
	return h, r.checkRecords(b, h)
}

// reject logs why a request was refused at Debug and returns the protocol
// error the client gets.
func (r *Replica) reject(code *kerr.Error, cause error) error {
	r.logger.Debug("append rejected", zap.String("code", code.Message), zap.Error(cause))
	return code
}
