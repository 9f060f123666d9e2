package partition

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// SegmentLog returns the replica's segment log as its one appender,
// replication's Raft log store (replication/raftlog), writes it: Append and
// TruncateTo are serialised with the replica's other writers (compaction's
// segment swaps, retention), reads and syncs go straight to the log.
// Nothing else may append to or truncate it.
func (r *Replica) SegmentLog() StoreLog { return StoreLog{r: r} }

// StoreLog is a replica's log as its Raft log store uses it; see
// Replica.SegmentLog.
type StoreLog struct{ r *Replica }

// NextOffset returns the log end offset.
func (s StoreLog) NextOffset() int64 { return s.r.log.NextOffset() }

// Append writes whole batches at the log end (log.Log.Append) under the
// replica's writer lock.
func (s StoreLog) Append(b []byte) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.closed.Load() {
		return ErrClosed
	}
	return s.r.log.Append(b)
}

// AppendCompacted writes whole batches copied from a compacted log, which
// may leave offset gaps (log.Log.AppendCompacted), under the replica's
// writer lock: a replica catching up from a leader whose compaction
// removed batches it lacks.
func (s StoreLog) AppendCompacted(b []byte) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.closed.Load() {
		return ErrClosed
	}
	return s.r.log.AppendCompacted(b)
}

// TruncateTo removes every batch at or after offset (log.Log.TruncateTo)
// under the replica's writer lock.
func (s StoreLog) TruncateTo(offset int64) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.closed.Load() {
		return ErrClosed
	}
	return s.r.log.TruncateTo(offset)
}

// RestartAt empties the log and restarts it at offset, above the log end
// (log.Log.RestartAt), under the replica's writer lock: a replica
// catching up whose leader no longer holds what it lacks continues from
// the leader's log start. The caller rebuilds the replica's state
// (Truncated) afterwards.
func (s StoreLog) RestartAt(offset int64) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.closed.Load() {
		return ErrClosed
	}
	return s.r.log.RestartAt(offset)
}

// Read returns whole batches from an offset (log.Log.Read).
func (s StoreLog) Read(dst []byte, req log.ReadRequest) ([]byte, error) {
	return s.r.log.Read(dst, req)
}

// BatchHeaders calls fn for the headers of the batches from an offset
// (log.Log.BatchHeaders).
func (s StoreLog) BatchHeaders(from int64, fn func(log.BatchHeader) bool) error {
	return s.r.log.BatchHeaders(from, fn)
}

// Sync makes every appended batch durable (log.Log.Sync).
func (s StoreLog) Sync() error { return s.r.log.Sync() }

// ApplyStored is the apply step for a batch that the Raft log store
// already wrote into the log at offset base (one batch, as Prepare's
// leader stamped it): it checks and records the batch in the producer
// state and the leader-epoch cache, as Apply does, but writes nothing.
// epoch is the entry's Raft term. Like Apply it is deterministic and never
// reads the clock.
//
// A batch below what the producer state already accounts for (the log end
// at Open, replayed by Raft after a restart) is skipped: its effects are
// in the state already. The high watermark is the owner's to advance
// (Options.ExternalHighWatermark).
//
// A duplicate or out-of-order idempotent batch cannot be refused here:
// it is already in the log. Prepare's forecast prevents it as long as a
// new leader applies every earlier entry before its first Prepare; should
// one appear, it is logged as an error, the producer state is left as it
// was, and the *kerr.Error (with the original offsets for a duplicate) is
// returned so the proposer answers its client as for a retry.
func (r *Replica) ApplyStored(batch []byte, base int64, epoch int32) (AppendResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return AppendResult{}, ErrClosed
	}
	h, err := log.ParseBatchHeader(batch)
	if err != nil || h.Size() != len(batch) {
		return AppendResult{}, fmt.Errorf("partition: apply stored batch at %d to %s-%d: %w: %d bytes, not one batch (%v)", base, r.topic, r.partition, ErrCorruptEntry, len(batch), err)
	}
	h.BaseOffset = base
	next := h.NextOffset()
	if next > r.log.NextOffset() {
		return AppendResult{}, fmt.Errorf("partition: apply stored batch [%d, %d) to %s-%d: the log ends at %d", base, next, r.topic, r.partition, r.log.NextOffset())
	}
	res := AppendResult{BaseOffset: base, LastOffset: next - 1, LogAppendTime: -1, LogStartOffset: r.log.StartOffset()}
	if h.LogAppendTime() {
		res.LogAppendTime = h.MaxTimestamp
	}
	if next <= r.appliedEnd {
		return res, nil
	}
	if base != r.appliedEnd {
		return AppendResult{}, fmt.Errorf("partition: apply stored batch at %d to %s-%d: expected the batch at %d", base, r.topic, r.partition, r.appliedEnd)
	}

	defer r.producers.discard()
	if h.Control() {
		if err := r.checkControl(batch, &h, base); err != nil {
			var code *kerr.Error
			if !errors.As(err, &code) {
				return AppendResult{}, err
			}
			// Already in the log, like a refused idempotent batch
			// below: the proposer learns the refusal; the state stays.
			r.appliedEnd = next
			r.observe(&h, h.MaxTimestamp)
			r.logger.Error("marker stored in the log failed the producer check at apply",
				zap.Int64("base-offset", base), zap.Int64("producer-id", h.ProducerID),
				zap.Int16("producer-epoch", h.ProducerEpoch), zap.String("code", code.Message))
			return AppendResult{}, code
		}
		r.appliedEnd = next
		r.commitProducers()
		r.observe(&h, h.MaxTimestamp)
		r.epochs.assign(epoch, base)
		return res, nil
	}
	m, duplicate, perr := r.producers.check(&h, base, h.MaxTimestamp)
	r.appliedEnd = next
	if perr != nil || duplicate {
		r.producers.discard()
		r.observe(&h, h.MaxTimestamp)
		r.producers.dropPending(h.ProducerID)
		code := perr
		if duplicate {
			code = kerr.DuplicateSequenceNumber
			res.BaseOffset, res.LastOffset, res.Duplicate = m.baseOffset, m.lastOffset, true
		}
		r.logger.Error("batch stored in the log failed the producer check at apply",
			zap.Int64("base-offset", base), zap.Int64("producer-id", h.ProducerID),
			zap.Int16("producer-epoch", h.ProducerEpoch), zap.Int32("base-sequence", h.BaseSequence),
			zap.String("code", code.Message))
		if duplicate {
			return res, nil
		}
		return AppendResult{}, code
	}
	r.commitProducers()
	r.observe(&h, h.MaxTimestamp)
	r.epochs.assign(epoch, base)
	if sequenced(&h) && len(r.producers.pending) > 0 {
		r.producers.retire(&h, batchMetadata{
			firstSequence: h.BaseSequence,
			lastSequence:  h.LastSequence(),
			baseOffset:    base,
			lastOffset:    next - 1,
			timestamp:     h.MaxTimestamp,
		})
	}
	return res, nil
}

// Truncated tells the replica that its owner truncated the log (a Raft
// log conflict): the producer state and the leader-epoch cache are
// rebuilt from the log, which costs a scan of every batch header. Rare: it
// happens only to a replica that held entries a new leader did not.
func (r *Replica) Truncated() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	r.producers = newProducerStates()
	r.txns.reset()
	if _, err := r.loadProducerState(); err != nil {
		return err
	}
	if err := r.rebuildEpochs(); err != nil {
		return err
	}
	r.appliedEnd = r.log.NextOffset()
	r.txns.update(&r.hwm)
	return nil
}

// SetCleanFloor makes retention and compaction leave alone every segment
// that reaches floor() (nil removes the floor): a replicated partition's
// Raft log store passes the offset of the first batch its Raft window
// still holds, since followers catching up read those batches as Raft
// entries, and compaction or deletion below it would leave them a hole.
// Safe for concurrent use.
func (r *Replica) SetCleanFloor(floor func() int64) {
	if floor == nil {
		r.cleanFloor.Store(nil)
		return
	}
	r.cleanFloor.Store(&floor)
}

// cleanBound is the offset retention and compaction stop at: the last
// stable offset (so neither removes nor compacts the data of an open
// transaction, whose first offset a rebuild must find again), or the
// clean floor when lower.
func (r *Replica) cleanBound() int64 {
	bound := r.txns.lso.Load()
	if f := r.cleanFloor.Load(); f != nil {
		bound = min(bound, (*f)())
	}
	return bound
}
