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
// wait for durability: see WaitCommitted.
//
// Also RecordListTooLarge for a request above the log's SegmentBytes, as
// Kafka answers. An unknown producer whose first sequence is not 0 gets
// OutOfOrderSequenceNumber (as Kafka does since KIP-360), so
// UnknownProducerID is not returned yet.
//
// The kerr values are returned unwrapped; why a batch was rejected is
// logged at Debug. A control batch is InvalidRecord and a transactional
// batch InvalidTxnState (transactions are not supported yet). A request
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
	e, duplicate, err := r.prepare(b, r.epoch.Load(), false)
	if err != nil || duplicate.Duplicate {
		return duplicate, err
	}
	return r.apply(e)
}

// validate checks the batch at the start of b as a client's produced batch
// and returns its header.
func (r *Replica) validate(b []byte) (log.BatchHeader, error) {
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
	if h.Control() {
		return h, r.reject(kerr.InvalidRecord, fmt.Errorf("control batch from a producer"))
	}
	if h.Transactional() {
		return h, r.reject(kerr.InvalidTxnState, fmt.Errorf("transactional batch from producer %d: transactions are not supported", h.ProducerID))
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
