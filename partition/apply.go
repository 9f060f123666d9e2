package partition

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// Apply is the deterministic half of a produce: it writes entry e, which
// Prepare built on the leader and Raft committed, at the end of the log.
// Every replica that applies the same entries in the same order from the
// same state ends with the same log bytes, producer state and leader-epoch
// cache, and returns the same result: Apply reads only e, the log end
// offset and the producer state. It never reads the clock nor the topic
// config (both may differ between replicas); the log's own segment.ms roll
// check is the one clock read below it, and it decides only where a
// segment file ends, not any byte of the log.
//
// Apply assigns offsets from the log end, stamps each batch's base offset,
// e.LeaderEpoch and, when e.LogAppendTime >= 0, the LogAppendTime (which
// recomputes the batch CRC), all in place in e.Batches; writes the batches
// with one log.Append; and records them in the producer state and the
// leader-epoch cache. Idempotent sequences are checked again, against the
// applied state only, since a retry may have been proposed twice (by two
// leaders, or after ResetPending):
//
//   - every batch a duplicate of a batch in the log: nothing is written,
//     and the result has Duplicate set and the original offsets;
//   - OutOfOrderSequenceNumber, InvalidProducerEpoch, or InvalidRecord for
//     an entry that mixes duplicates and new batches: nothing is written.
//
// These outcomes are *kerr.Error values, returned unwrapped, and are the
// same on every replica: the caller answers the client with them and goes
// on applying. Any other error is not deterministic: ErrClosed, an error
// wrapping ErrCorruptEntry for batches that do not parse, or a storage
// failure from the log, after which the
// replica cannot go on. AppendResult.LogStartOffset is the local log start
// offset, the one field that may differ between replicas.
//
// The high watermark then advances as for Append, unless
// Options.ExternalHighWatermark hands it to the caller (see
// AdvanceHighWatermark). Safe for concurrent use; serialised with every
// other writer.
func (r *Replica) Apply(e Entry) (AppendResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return AppendResult{}, ErrClosed
	}
	return r.apply(e)
}

// apply is Apply with r.mu held.
func (r *Replica) apply(e Entry) (AppendResult, error) {
	if e.LogAppendTime < -1 {
		return AppendResult{}, fmt.Errorf("partition: apply to %s-%d: %w: log append time %d", r.topic, r.partition, ErrCorruptEntry, e.LogAppendTime)
	}
	headers := r.headers[:0]
	defer func() { r.headers = headers[:0] }()
	for pos := 0; pos < len(e.Batches); {
		h, err := entryBatch(e.Batches, pos, len(headers))
		if err != nil {
			return AppendResult{}, fmt.Errorf("partition: apply to %s-%d: %w", r.topic, r.partition, err)
		}
		headers = append(headers, h)
		pos += h.Size()
	}
	if len(headers) == 0 {
		return AppendResult{}, fmt.Errorf("partition: apply to %s-%d: %w: no record batch", r.topic, r.partition, ErrCorruptEntry)
	}

	// Producer checks against the applied state, each batch against the
	// state as staged by the batches before it. Nothing is committed until
	// the log write is done.
	defer r.producers.discard()
	first := r.log.NextOffset()
	next := first
	var (
		duplicates int
		dupResult  = AppendResult{LogAppendTime: -1, Duplicate: true}
		pos        int
	)
	for i := range headers {
		h := &headers[i]
		batch := e.Batches[pos : pos+h.Size()]
		pos += h.Size()
		if h.Control() {
			if err := r.checkControl(batch, h, next); err != nil {
				r.dropPending(headers)
				return AppendResult{}, err
			}
			next += int64(h.LastOffsetDelta) + 1
			continue
		}
		timestamp := h.MaxTimestamp
		if e.LogAppendTime >= 0 {
			timestamp = e.LogAppendTime
		}
		m, duplicate, err := r.producers.check(h, next, timestamp)
		if err != nil {
			r.dropPending(headers)
			return AppendResult{}, r.reject(err, fmt.Errorf("apply: producer %d epoch %d sequences [%d, %d] at batch %d of %d",
				h.ProducerID, h.ProducerEpoch, h.BaseSequence, h.LastSequence(), i, len(headers)))
		}
		if duplicate {
			if duplicates == 0 {
				dupResult.BaseOffset = m.baseOffset
			}
			dupResult.LastOffset = m.lastOffset
			if e.LogAppendTime >= 0 {
				dupResult.LogAppendTime = m.timestamp
			}
			duplicates++
			continue
		}
		next += int64(h.LastOffsetDelta) + 1
	}
	if duplicates > 0 {
		if duplicates != len(headers) {
			r.dropPending(headers)
			return AppendResult{}, r.reject(kerr.InvalidRecord, fmt.Errorf("apply: %d of %d batches are retries of batches already in the log", duplicates, len(headers)))
		}
		if len(r.producers.pending) > 0 {
			for i := range headers {
				r.producers.retireDuplicate(&headers[i])
			}
		}
		dupResult.LogStartOffset = r.log.StartOffset()
		r.logger.Debug("duplicate entry skipped",
			zap.Int64("base-offset", dupResult.BaseOffset),
			zap.Int64("last-offset", dupResult.LastOffset))
		return dupResult, nil
	}

	// Stamp the header fields the broker owns. Base offset and leader epoch
	// lie outside the CRC; LogAppendTime recomputes it.
	offset, pos := first, 0
	for i := range headers {
		h := &headers[i]
		batch := e.Batches[pos : pos+h.Size()]
		log.SetBaseOffset(batch, offset)
		log.SetPartitionLeaderEpoch(batch, e.LeaderEpoch)
		if e.LogAppendTime >= 0 {
			log.SetLogAppendTime(batch, e.LogAppendTime)
		}
		h.BaseOffset = offset
		offset += int64(h.LastOffsetDelta) + 1
		pos += h.Size()
	}

	if err := r.log.Append(e.Batches); err != nil {
		return AppendResult{}, fmt.Errorf("partition: append %d batches at offset %d to %s-%d: %w", len(headers), first, r.topic, r.partition, err)
	}
	r.commitProducers()
	for i := range headers {
		timestamp := headers[i].MaxTimestamp
		if e.LogAppendTime >= 0 {
			timestamp = e.LogAppendTime
		}
		r.observe(&headers[i], timestamp)
	}
	r.epochs.assign(e.LeaderEpoch, first)
	r.appliedEnd = next
	if len(r.producers.pending) > 0 {
		for i := range headers {
			h := &headers[i]
			if !sequenced(h) {
				continue
			}
			m := batchMetadata{
				firstSequence: h.BaseSequence,
				lastSequence:  h.LastSequence(),
				baseOffset:    h.BaseOffset,
				lastOffset:    h.LastOffset(),
				timestamp:     h.MaxTimestamp, // as parsed, before stamping
			}
			if e.LogAppendTime >= 0 {
				m.timestamp = e.LogAppendTime
			}
			r.producers.retire(h, m)
		}
	}

	switch {
	case !r.durable:
		r.advanceHWM(r.localHWMBound(next))
	case r.syncEach:
		// The batches are in the log and the producer state knows them, so
		// a client retrying after a sync failure is answered as a
		// duplicate once the data is durable.
		if err := r.log.Sync(); err != nil {
			return AppendResult{}, fmt.Errorf("partition: sync %s-%d after append at offset %d: %w", r.topic, r.partition, first, err)
		}
		r.advanceHWM(r.localHWMBound(r.log.SyncedOffset()))
	}
	// Otherwise the flusher's OnSynced advances the high watermark.

	return AppendResult{
		BaseOffset:     first,
		LastOffset:     next - 1,
		LogAppendTime:  e.LogAppendTime,
		LogStartOffset: r.log.StartOffset(),
	}, nil
}

// checkControl checks control batch h (its bytes batch), to be stored at
// offset, against the staged producer state and stages it: a transaction
// marker ends its producer's transaction (producerStates.checkMarker). A
// control batch that holds no marker changes nothing. The *kerr.Error
// outcomes are deterministic; a marker that does not decode wraps
// ErrCorruptEntry. Called with r.mu held.
func (r *Replica) checkControl(batch []byte, h *log.BatchHeader, offset int64) error {
	m, ok, err := decodeMarker(batch, h)
	if err != nil {
		return fmt.Errorf("partition: apply to %s-%d: %w: control batch: %w", r.topic, r.partition, ErrCorruptEntry, err)
	}
	if !ok {
		return nil
	}
	r.producers.markerApplied(m.ProducerID)
	if code := r.producers.checkMarker(m, offset); code != nil {
		return r.reject(code, fmt.Errorf("apply: marker of producer %d epoch %d coordinator epoch %d", m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch))
	}
	return nil
}

// commitProducers makes the staged producer state current and records its
// transaction changes. Called with r.mu held, once the log holds the
// batches.
func (r *Replica) commitProducers() {
	r.txns.record(r.producers.events)
	r.producers.commit()
}

// dropPending forgets the in-flight forecast of every producer of the
// refused entry whose batches are headers: its batches will never apply,
// so the forecast no longer holds (see producerStates.dropPending).
func (r *Replica) dropPending(headers []log.BatchHeader) {
	for i := range headers {
		if h := &headers[i]; sequenced(h) {
			r.producers.dropPending(h.ProducerID)
		}
	}
}
