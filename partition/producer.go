package partition

import (
	"math"
	"slices"

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

// producerEntry is the state of one producer id: its epoch, its latest
// batches, oldest first, and its transaction. It is a value type so that
// Append can stage a modified copy and commit it only once the log write
// succeeded. Make one with newProducerEntry.
type producerEntry struct {
	epoch   int16
	count   int // batches in use, at most producerWindow
	batches [producerWindow]batchMetadata
	// inTxn is set from the producer's first transactional batch to the
	// marker that ends its transaction.
	inTxn bool
	// txnFirstOffset is the offset of that first batch (Kafka's
	// currentTxnFirstOffset); -1 without a transaction, and in the
	// in-flight forecast, where offsets are not known yet.
	txnFirstOffset int64
	// coordinatorEpoch is the coordinator epoch of the last marker written
	// for the producer, -1 if none: a marker from an older coordinator is
	// fenced.
	coordinatorEpoch int32
	// lastTimestamp is the largest timestamp of the producer's batches in
	// the log, markers included, -1 if none known: the producer expires
	// once the partition's clock is producer.id.expiration.ms past it
	// (expire.go).
	lastTimestamp int64
}

// newProducerEntry returns the state of a producer first seen at epoch.
func newProducerEntry(epoch int16) producerEntry {
	return producerEntry{epoch: epoch, txnFirstOffset: -1, coordinatorEpoch: -1, lastTimestamp: -1}
}

// restart moves the producer to a new epoch: its sequence window starts
// over; its transaction and coordinator epoch stay, as Kafka's
// ProducerAppendInfo keeps them across an epoch bump.
func (e *producerEntry) restart(epoch int16) {
	e.epoch, e.count, e.batches = epoch, 0, [producerWindow]batchMetadata{}
}

// beginTxn starts the producer's transaction at offset if none is ongoing
// and reports whether it did.
func (e *producerEntry) beginTxn(offset int64) bool {
	if e.inTxn {
		return false
	}
	e.inTxn, e.txnFirstOffset = true, offset
	return true
}

// sequenced reports whether batch h carries producer sequences that the
// idempotence checks and the in-flight overlay track: a data batch with a
// producer id and a base sequence. Markers (control batches) and the
// coordinators' transactional batches (base sequence -1) carry none.
func sequenced(h *log.BatchHeader) bool {
	return h.Idempotent() && h.BaseSequence >= 0 && !h.Control()
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
//
// It has two layers. entries is the applied state: exactly the batches in
// the log, the same on every replica, and the only layer Apply checks
// against. pending is the leader's in-flight overlay: for each producer
// with batches prepared (Prepare) but not yet applied, the state it will
// have once they apply. Prepare checks against pending, then entries, so a
// client's pipelined requests pass while earlier ones are still being
// replicated. The overlay is a forecast, never the truth: Apply retires
// it, ResetPending drops it, and a wrong forecast only costs an
// apply-time rejection, never a duplicate in the log.
type producerStates struct {
	entries map[int64]producerEntry
	// staged holds the entries a Prepare or Apply has checked but not yet
	// committed, so later batches of the same request see the earlier
	// ones. Reused across calls; empty between them.
	staged []stagedEntry
	// pending is the in-flight overlay, nil or empty on a replica that is
	// not preparing. A producer is in it only while it has batches in
	// flight.
	pending map[int64]*pendingProducer
	// events are the transaction changes of the staged entries, in log
	// order: committed with them (Replica.commitProducers), dropped with
	// them by discard.
	events []txnEvent
	// spare holds a few pendingProducers no longer in flight, for reuse, so
	// that a steady producer costs Prepare no allocation.
	spare []*pendingProducer
	// verifications are the leader's verification guards in force, by
	// producer id (txn_verify.go); nextGuard is the last guard handed
	// out. Dropped with the forecast.
	verifications map[int64]txnVerification
	nextGuard     uint64
	// markersInFlight counts, per producer, the markers this leader
	// prepared that have not applied yet: until they do, the forecast
	// still shows the transaction they end under way (txn_verify.go).
	// Dropped with the forecast.
	markersInFlight map[int64]int
	// clock is the partition's clock for producer expiry: the largest
	// timestamp of the batches in the log, -1 before any (expire.go).
	clock int64
}

// maxSpare bounds producerStates.spare.
const maxSpare = 16

// pendingProducer is one producer's in-flight forecast.
type pendingProducer struct {
	// entry is the state once every in-flight batch applies. The window
	// holds in-flight batches with baseOffset -1 (offsets are assigned at
	// apply) until Apply fills them in.
	entry producerEntry
	// inFlight lists the batches prepared and not yet applied, oldest
	// first; never empty while in the map.
	inFlight []inFlightBatch
}

// inFlightBatch identifies a prepared batch of a producer.
type inFlightBatch struct {
	epoch                       int16
	firstSequence, lastSequence int32
}

type stagedEntry struct {
	producerID int64
	entry      producerEntry
}

func newProducerStates() producerStates {
	return producerStates{entries: make(map[int64]producerEntry), clock: -1}
}

func (s *producerStates) len() int { return len(s.entries) }

// lookup returns the entry an apply-time check should see: staged first,
// then committed.
func (s *producerStates) lookup(producerID int64) (producerEntry, bool) {
	for i := range s.staged {
		if s.staged[i].producerID == producerID {
			return s.staged[i].entry, true
		}
	}
	e, ok := s.entries[producerID]
	return e, ok
}

// lookupPending returns the entry a prepare-time check should see: staged
// first, then the in-flight forecast, then committed.
func (s *producerStates) lookupPending(producerID int64) (producerEntry, bool) {
	for i := range s.staged {
		if s.staged[i].producerID == producerID {
			return s.staged[i].entry, true
		}
	}
	if p, ok := s.pending[producerID]; ok {
		return p.entry, true
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

// commitPending makes the staged entries the in-flight forecast and
// records the idempotent batches among headers, all accepted by
// checkPending, as in flight.
func (s *producerStates) commitPending(headers []log.BatchHeader) {
	if s.pending == nil {
		s.pending = make(map[int64]*pendingProducer)
	}
	for _, st := range s.staged {
		p := s.pending[st.producerID]
		if p == nil {
			if n := len(s.spare); n > 0 {
				p, s.spare = s.spare[n-1], s.spare[:n-1]
			} else {
				p = &pendingProducer{}
			}
			s.pending[st.producerID] = p
		}
		p.entry = st.entry
	}
	for i := range headers {
		if h := &headers[i]; sequenced(h) {
			p := s.pending[h.ProducerID]
			p.inFlight = append(p.inFlight, inFlightBatch{h.ProducerEpoch, h.BaseSequence, h.LastSequence()})
		}
	}
	s.discard()
}

// retire ends the flight of batch h, which Apply has just written as m or
// found to be a duplicate of m. A batch not in flight (prepared by an
// earlier leader, before a ResetPending, or appended by Append) changes
// nothing.
func (s *producerStates) retire(h *log.BatchHeader, m batchMetadata) {
	p, ok := s.pending[h.ProducerID]
	if !ok {
		return
	}
	first, last := h.BaseSequence, h.LastSequence()
	i := slices.Index(p.inFlight, inFlightBatch{h.ProducerEpoch, first, last})
	if i < 0 {
		return
	}
	p.inFlight = slices.Delete(p.inFlight, i, i+1)
	if len(p.inFlight) == 0 {
		// The forecast has come true: entries now says the same, with
		// every offset known.
		delete(s.pending, h.ProducerID)
		if len(s.spare) < maxSpare {
			s.spare = append(s.spare, p)
		}
		return
	}
	// A retry of this batch is now answered from the forecast with the
	// offsets the batch got.
	if p.entry.epoch == h.ProducerEpoch {
		for j := range p.entry.batches[:p.entry.count] {
			if b := &p.entry.batches[j]; b.firstSequence == first && b.lastSequence == last && b.baseOffset < 0 {
				*b = m
				break
			}
		}
	}
}

// retireDuplicate is retire for batch h, which Apply found to be a
// duplicate of a batch in the applied state.
func (s *producerStates) retireDuplicate(h *log.BatchHeader) {
	if e, ok := s.entries[h.ProducerID]; ok && e.epoch == h.ProducerEpoch {
		if m, ok := e.find(h.BaseSequence, h.LastSequence()); ok {
			s.retire(h, m)
		}
	}
}

// dropPending forgets producerID's forecast: Apply refused one of its
// batches, so the batches prepared after it will be refused too, and
// Prepare had better check the producer against the applied state.
func (s *producerStates) dropPending(producerID int64) {
	delete(s.pending, producerID)
}

// resetPending forgets every forecast, and the verification guards.
func (s *producerStates) resetPending() {
	clear(s.pending)
	clear(s.verifications)
	clear(s.markersInFlight)
}

// inFlight returns how many batches are prepared and not yet applied.
func (s *producerStates) inFlight() int {
	n := 0
	for _, p := range s.pending {
		n += len(p.inFlight)
	}
	return n
}

// discard drops the staged entries of a rejected or failed append.
func (s *producerStates) discard() {
	clear(s.staged)
	s.staged = s.staged[:0]
	s.events = s.events[:0]
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
	e, known := s.lookup(h.ProducerID)
	if h.BaseSequence < 0 {
		// Only a coordinator writes these (Prepare refuses them from
		// clients): no sequence to check.
		return batchMetadata{}, false, s.checkUnsequenced(h, e, known, baseOffset)
	}
	return s.checkEntry(h, e, known, baseOffset, timestamp)
}

// checkUnsequenced checks and stages a coordinator's batch of producer h
// without sequences (AppendAsCoordinator, as TxnOffsetCommit records):
// its epoch may not be below the producer's; a transactional one starts
// or continues the producer's transaction.
func (s *producerStates) checkUnsequenced(h *log.BatchHeader, e producerEntry, known bool, baseOffset int64) *kerr.Error {
	switch {
	case !known:
		e = newProducerEntry(h.ProducerEpoch)
	case h.ProducerEpoch < e.epoch:
		return kerr.InvalidProducerEpoch
	case h.ProducerEpoch > e.epoch:
		e.restart(h.ProducerEpoch)
	}
	if h.Transactional() && e.beginTxn(baseOffset) && baseOffset >= 0 {
		s.events = append(s.events, txnEvent{producerID: h.ProducerID, first: baseOffset, marker: -1})
	}
	s.stage(h.ProducerID, e)
	return nil
}

// checkMarker checks marker m, to be stored at offset (-1 at prepare
// time, checked against the in-flight forecast), as Kafka's
// ProducerAppendInfo.appendEndTxnMarker: an epoch below the producer's is
// InvalidProducerEpoch; a coordinator epoch below that of the producer's
// last marker is TransactionCoordinatorFenced. Otherwise the marker ends
// the producer's transaction, raises its epoch to the marker's and records
// the coordinator epoch; at apply time it is staged with its event.
func (s *producerStates) checkMarker(m TxnMarker, offset int64) *kerr.Error {
	var (
		e     producerEntry
		known bool
	)
	if offset < 0 {
		e, known = s.lookupPending(m.ProducerID)
	} else {
		e, known = s.lookup(m.ProducerID)
	}
	switch {
	case !known:
		e = newProducerEntry(m.ProducerEpoch)
	case m.ProducerEpoch < e.epoch:
		return kerr.InvalidProducerEpoch
	case m.CoordinatorEpoch < e.coordinatorEpoch:
		return kerr.TransactionCoordinatorFenced
	case m.ProducerEpoch > e.epoch:
		e.restart(m.ProducerEpoch)
	}
	if offset < 0 {
		return nil
	}
	first := int64(-1)
	if e.inTxn {
		first = e.txnFirstOffset
	}
	e.inTxn, e.txnFirstOffset, e.coordinatorEpoch = false, -1, m.CoordinatorEpoch
	s.events = append(s.events, txnEvent{producerID: m.ProducerID, first: first, marker: offset, commit: m.Commit})
	s.stage(m.ProducerID, e)
	return nil
}

// checkPending is check at prepare time, against the state as it will be
// once every in-flight batch applies. Offsets are not known yet: a batch is
// staged with baseOffset and lastOffset -1, and a duplicate with
// baseOffset -1 is a retry of a batch still in flight.
func (s *producerStates) checkPending(h *log.BatchHeader) (duplicate batchMetadata, isDuplicate bool, err *kerr.Error) {
	if !h.Idempotent() {
		return batchMetadata{}, false, nil
	}
	e, known := s.lookupPending(h.ProducerID)
	return s.checkEntry(h, e, known, -1, -1)
}

// checkEntry is check against e, the producer's entry as the caller sees
// it (known false: none).
func (s *producerStates) checkEntry(h *log.BatchHeader, e producerEntry, known bool, baseOffset, timestamp int64) (duplicate batchMetadata, isDuplicate bool, err *kerr.Error) {
	first, last := h.BaseSequence, h.LastSequence()
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
		if known {
			e.restart(h.ProducerEpoch)
		} else {
			e = newProducerEntry(h.ProducerEpoch)
		}
	}
	switch {
	case h.Transactional():
		if e.beginTxn(baseOffset) && baseOffset >= 0 {
			s.events = append(s.events, txnEvent{producerID: h.ProducerID, first: baseOffset, marker: -1})
		}
	case e.inTxn:
		// As Kafka: a producer in a transaction writes only
		// transactional batches until its marker.
		return batchMetadata{}, false, kerr.InvalidTxnState
	}
	lastOffset := int64(-1)
	if baseOffset >= 0 {
		lastOffset = baseOffset + int64(h.LastOffsetDelta)
	}
	e.add(batchMetadata{
		firstSequence: first,
		lastSequence:  last,
		baseOffset:    baseOffset,
		lastOffset:    lastOffset,
		timestamp:     timestamp,
	})
	s.stage(h.ProducerID, e)
	return batchMetadata{}, false, nil
}

// replay applies a batch read back from the log, without checks: the log
// holds only batches that passed them when appended. A different epoch
// restarts the producer's window, as a bump does on append. marker is the
// batch's marker when h is a control batch holding one, else nil. The
// transaction change, if any, is returned (ok set).
func (s *producerStates) replay(h *log.BatchHeader, marker *TxnMarker) (ev txnEvent, ok bool) {
	if !h.Idempotent() {
		return txnEvent{}, false
	}
	e, known := s.entries[h.ProducerID]
	switch {
	case !known:
		e = newProducerEntry(h.ProducerEpoch)
	case e.epoch != h.ProducerEpoch:
		e.restart(h.ProducerEpoch)
	}
	if h.Control() {
		if marker == nil {
			return txnEvent{}, false
		}
		ev = txnEvent{producerID: h.ProducerID, first: -1, marker: h.BaseOffset, commit: marker.Commit}
		if e.inTxn {
			ev.first = e.txnFirstOffset
		}
		e.inTxn, e.txnFirstOffset, e.coordinatorEpoch = false, -1, marker.CoordinatorEpoch
		s.entries[h.ProducerID] = e
		return ev, true
	}
	if h.Transactional() && e.beginTxn(h.BaseOffset) {
		ev, ok = txnEvent{producerID: h.ProducerID, first: h.BaseOffset, marker: -1}, true
	}
	if h.BaseSequence < 0 {
		s.entries[h.ProducerID] = e
		return ev, ok
	}
	e.add(batchMetadata{
		firstSequence: h.BaseSequence,
		lastSequence:  h.LastSequence(),
		baseOffset:    h.BaseOffset,
		lastOffset:    h.LastOffset(),
		timestamp:     h.MaxTimestamp,
	})
	s.entries[h.ProducerID] = e
	return ev, ok
}
