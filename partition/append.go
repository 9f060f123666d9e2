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
// (header fields) and not retained.
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
// After Close, Append returns ErrClosed.
func (r *Replica) Append(b []byte) (AppendResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return AppendResult{}, ErrClosed
	}

	if int64(len(b)) > r.cfg.Log.SegmentBytes {
		// As Kafka: a request must fit in one segment.
		return AppendResult{}, r.reject(kerr.RecordListTooLarge, fmt.Errorf("request of %d bytes above segment.bytes %d", len(b), r.cfg.Log.SegmentBytes))
	}

	// Validate every batch before looking at producer state, and check
	// every producer sequence before writing anything, so a rejected
	// request leaves both the log and the producer state untouched.
	headers := r.headers[:0]
	defer func() { r.headers = headers[:0] }()
	for rest := b; len(rest) > 0; {
		h, err := r.validate(rest)
		if err != nil {
			return AppendResult{}, err
		}
		headers = append(headers, h)
		rest = rest[h.Size():]
	}
	if len(headers) == 0 {
		return AppendResult{}, r.reject(kerr.CorruptMessage, fmt.Errorf("%w: no record batch in %d bytes", log.ErrCorrupt, len(b)))
	}

	appendTime := int64(-1)
	if r.cfg.TimestampType == LogAppendTime {
		appendTime = r.now().UnixMilli()
	}

	// Producer checks, in order, each against the state as staged by the
	// batches before it. Nothing is committed until the log write is done.
	defer r.producers.discard()
	first := r.log.NextOffset()
	next := first
	var (
		duplicates int
		dupResult  = AppendResult{LogAppendTime: -1, Duplicate: true}
	)
	for i := range headers {
		h := &headers[i]
		timestamp := h.MaxTimestamp
		if appendTime >= 0 {
			timestamp = appendTime
		}
		m, duplicate, err := r.producers.check(h, next, timestamp)
		if err != nil {
			return AppendResult{}, r.reject(err, fmt.Errorf("producer %d epoch %d sequences [%d, %d] at batch %d of %d",
				h.ProducerID, h.ProducerEpoch, h.BaseSequence, h.LastSequence(), i, len(headers)))
		}
		if duplicate {
			if duplicates == 0 {
				dupResult.BaseOffset = m.baseOffset
			}
			dupResult.LastOffset = m.lastOffset
			if appendTime >= 0 {
				dupResult.LogAppendTime = m.timestamp
			}
			duplicates++
			continue
		}
		next += int64(h.LastOffsetDelta) + 1
	}
	if duplicates > 0 {
		if duplicates != len(headers) {
			return AppendResult{}, r.reject(kerr.InvalidRecord, fmt.Errorf("%d of %d batches are retries of batches already in the log", duplicates, len(headers)))
		}
		dupResult.LogStartOffset = r.log.StartOffset()
		r.logger.Debug("duplicate append ignored",
			zap.Int64("base-offset", dupResult.BaseOffset),
			zap.Int64("last-offset", dupResult.LastOffset))
		return dupResult, nil
	}

	// Stamp the header fields the broker owns. Base offset and leader epoch
	// lie outside the CRC; LogAppendTime recomputes it.
	epoch := r.epoch.Load()
	offset, pos := first, 0
	for i := range headers {
		h := &headers[i]
		batch := b[pos : pos+h.Size()]
		log.SetBaseOffset(batch, offset)
		log.SetPartitionLeaderEpoch(batch, epoch)
		if appendTime >= 0 {
			log.SetLogAppendTime(batch, appendTime)
		}
		offset += int64(h.LastOffsetDelta) + 1
		pos += h.Size()
	}

	if err := r.log.Append(b); err != nil {
		return AppendResult{}, fmt.Errorf("partition: append %d batches at offset %d to %s-%d: %w", len(headers), first, r.topic, r.partition, err)
	}
	r.producers.commit()
	r.epochs.assign(epoch, first)

	switch {
	case !r.durable:
		r.advanceHWM(next)
	case r.syncEach:
		// The batches are in the log and the producer state knows them, so
		// a client retrying after a sync failure is answered as a
		// duplicate once the data is durable.
		if err := r.log.Sync(); err != nil {
			return AppendResult{}, fmt.Errorf("partition: sync %s-%d after append at offset %d: %w", r.topic, r.partition, first, err)
		}
		r.advanceHWM(r.log.SyncedOffset())
	}
	// Otherwise the flusher's OnSynced advances the high watermark.

	return AppendResult{
		BaseOffset:     first,
		LastOffset:     next - 1,
		LogAppendTime:  appendTime,
		LogStartOffset: r.log.StartOffset(),
	}, nil
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
