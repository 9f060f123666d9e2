package partition

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
)

// producerWindow is how many of a producer's latest batches are remembered
// for duplicate detection: Kafka's NUM_BATCHES_TO_RETAIN, matching the at
// most five requests an idempotent client keeps in flight per partition.
const producerWindow = 5

// batchMetadata describes one appended batch of an idempotent producer.
type batchMetadata struct {
	firstSequence, lastSequence int32
	baseOffset, lastOffset      int64
	// timestamp is the batch's max timestamp as stored (the broker's
	// clock under LogAppendTime).
	timestamp int64
}

// producerEntry is the state of one producer id: its epoch and its latest
// batches, oldest first. It is a value type so that Append can stage a
// modified copy and commit it only once the log write succeeded.
//
// Transactions will add the offset of the first batch of the ongoing
// transaction here (Kafka's currentTxnFirstOffset).
type producerEntry struct {
	epoch   int16
	count   int // batches in use, at most producerWindow
	batches [producerWindow]batchMetadata
}

// lastSequence returns the last sequence appended in this epoch, or -1.
func (e *producerEntry) lastSequence() int32 {
	if e.count == 0 {
		return -1
	}
	return e.batches[e.count-1].lastSequence
}

// add records a new batch, forgetting the oldest beyond the window.
func (e *producerEntry) add(m batchMetadata) {
	if e.count == producerWindow {
		copy(e.batches[:], e.batches[1:])
		e.count--
	}
	e.batches[e.count] = m
	e.count++
}

// find returns the remembered batch with exactly this sequence range.
func (e *producerEntry) find(first, last int32) (batchMetadata, bool) {
	for i := e.count - 1; i >= 0; i-- {
		if m := e.batches[i]; m.firstSequence == first && m.lastSequence == last {
			return m, true
		}
	}
	return batchMetadata{}, false
}

// inSequence reports whether next follows last, wrapping from the largest
// int32 to 0 as Kafka's producers do.
func inSequence(last, next int32) bool {
	return (last != math.MaxInt32 && next == last+1) || (last == math.MaxInt32 && next == 0)
}

// producerStates is a replica's idempotent producer state, keyed by
// producer id. It is guarded by Replica.mu.
type producerStates struct {
	entries map[int64]producerEntry
	// staged holds the entries an Append has checked but not yet
	// committed, so later batches of the same request see the earlier
	// ones. Reused across appends; empty between them.
	staged []stagedEntry
}

type stagedEntry struct {
	producerID int64
	entry      producerEntry
}

func newProducerStates() producerStates {
	return producerStates{entries: make(map[int64]producerEntry)}
}

func (s *producerStates) len() int { return len(s.entries) }

// lookup returns the entry a check should see: staged first, then
// committed.
func (s *producerStates) lookup(producerID int64) (producerEntry, bool) {
	for i := range s.staged {
		if s.staged[i].producerID == producerID {
			return s.staged[i].entry, true
		}
	}
	e, ok := s.entries[producerID]
	return e, ok
}

func (s *producerStates) stage(producerID int64, e producerEntry) {
	for i := range s.staged {
		if s.staged[i].producerID == producerID {
			s.staged[i].entry = e
			return
		}
	}
	s.staged = append(s.staged, stagedEntry{producerID, e})
}

// commit makes the staged entries current.
func (s *producerStates) commit() {
	for _, st := range s.staged {
		s.entries[st.producerID] = st.entry
	}
	s.discard()
}

// discard drops the staged entries of a rejected or failed append.
func (s *producerStates) discard() {
	clear(s.staged)
	s.staged = s.staged[:0]
}

// check validates batch h, to be stored at baseOffset with max timestamp
// timestamp, against the producer's state as staged so far, following
// Kafka's ProducerStateManager:
//
//   - no producer id: nothing to check;
//   - an epoch below the known one: InvalidProducerEpoch (fenced);
//   - the known epoch and a sequence range equal to one of the last
//     producerWindow batches: a duplicate, returned with its metadata and
//     nothing staged;
//   - the known epoch otherwise: the first sequence must follow the last
//     one, else OutOfOrderSequenceNumber;
//   - a higher epoch or an unknown producer: the first sequence must be 0,
//     else OutOfOrderSequenceNumber; the state restarts.
//
// On success the batch is staged.
func (s *producerStates) check(h *log.BatchHeader, baseOffset, timestamp int64) (duplicate batchMetadata, isDuplicate bool, err *kerr.Error) {
	if !h.Idempotent() {
		return batchMetadata{}, false, nil
	}
	first, last := h.BaseSequence, h.LastSequence()
	e, known := s.lookup(h.ProducerID)
	switch {
	case known && h.ProducerEpoch < e.epoch:
		return batchMetadata{}, false, kerr.InvalidProducerEpoch
	case known && h.ProducerEpoch == e.epoch:
		if m, ok := e.find(first, last); ok {
			return m, true, nil
		}
		if e.count == 0 && first != 0 || e.count > 0 && !inSequence(e.lastSequence(), first) {
			return batchMetadata{}, false, kerr.OutOfOrderSequenceNumber
		}
	default: // unknown producer, or a new epoch
		if first != 0 {
			return batchMetadata{}, false, kerr.OutOfOrderSequenceNumber
		}
		e = producerEntry{epoch: h.ProducerEpoch}
	}
	e.add(batchMetadata{
		firstSequence: first,
		lastSequence:  last,
		baseOffset:    baseOffset,
		lastOffset:    baseOffset + int64(h.LastOffsetDelta),
		timestamp:     timestamp,
	})
	s.stage(h.ProducerID, e)
	return batchMetadata{}, false, nil
}

// replay applies a batch read back from the log, without checks: the log
// holds only batches that passed them when appended. A different epoch
// restarts the producer's window, as a bump does on append.
func (s *producerStates) replay(h *log.BatchHeader) {
	if !h.Idempotent() || h.Control() {
		return
	}
	e, ok := s.entries[h.ProducerID]
	if !ok || e.epoch != h.ProducerEpoch {
		e = producerEntry{epoch: h.ProducerEpoch}
	}
	e.add(batchMetadata{
		firstSequence: h.BaseSequence,
		lastSequence:  h.LastSequence(),
		baseOffset:    h.BaseOffset,
		lastOffset:    h.LastOffset(),
		timestamp:     h.MaxTimestamp,
	})
	s.entries[h.ProducerID] = e
}
