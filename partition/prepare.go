package partition

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// ErrInFlight is what Prepare returns for a retry of idempotent batches
// that are prepared but not yet applied: the first attempt is still being
// replicated, so neither "written at these offsets" nor "write it again" is
// true yet. It wraps kerr.RequestTimedOut, the code Kafka gives a produce
// whose batch is in the leader's log but not yet replicated: retriable, and
// the client's next retry, once the first attempt has applied, is answered
// as a duplicate with the original offsets. A caller that tracks its
// proposals may instead wait for the first attempt to apply and call
// Prepare again.
var ErrInFlight = fmt.Errorf("partition: retry of a batch that is still being replicated: %w", kerr.RequestTimedOut)

// Prepare is the leader's half of a produce: it validates the request b
// (one or more record batches, concatenated) and checks its idempotent
// producer sequences, and returns the Entry to replicate. It writes
// nothing; Apply does, on every replica, once the entry is committed.
//
// Batches are checked in request order, as Append checks them: length,
// magic, CRC-32C, record count, max.message.bytes, the topic's timestamp
// and key rules (validate), then producer epochs and sequences against the
// state as it will be once every entry prepared before and not yet applied
// has applied (the in-flight overlay), so a client's pipelined requests
// pass while earlier ones are still in flight. Prepare reads the clock,
// once, for the entry's LogAppendTime under message.timestamp.type
// LogAppendTime (and for the timestamp bounds); Apply never does. epoch is
// the leader epoch Apply will stamp: the Raft term of this leader.
//
// Results:
//   - an Entry and a zero AppendResult: propose the entry, then Apply it.
//     Its Batches alias b, which must not be modified until the entry is
//     encoded or applied. Its batches are now in flight: the overlay
//     expects them to apply, in the order Prepare returned them, so
//     propose entries in that order;
//   - a zero Entry and an AppendResult with Duplicate set: every batch is
//     a retry of a batch already applied; the result carries the original
//     offsets (and under LogAppendTime the original time) and nothing is
//     to be proposed. The records are committed once the high watermark
//     passes LastOffset;
//   - ErrInFlight: every batch is a retry of a batch in flight, or of
//     batches some applied and some in flight;
//   - kerr.NotLeaderForPartition: epoch is below the epoch of an earlier
//     Prepare, so the caller's leadership is stale;
//   - any other error is one of Append's *kerr.Error rejections, returned
//     unwrapped, or ErrClosed. A rejected request leaves the overlay as it
//     was.
//
// A Prepare with an epoch above the previous one drops the overlay first,
// as ResetPending does: the entries of an earlier term may never apply.
// Safe for concurrent use; serialised with every other writer.
func (r *Replica) Prepare(b []byte, epoch int32) (Entry, AppendResult, error) {
	return r.prepareFenced(b, epoch, originClient, nil)
}

// origin says who wrote a batch Prepare checks.
type origin int8

const (
	// originClient is a producer's Produce request.
	originClient origin = iota
	// originCoordinator is a coordinator writing its internal topic
	// (AppendAsCoordinator): batches without sequences are allowed.
	originCoordinator
)

// PrepareAsCoordinator is Prepare for batches a coordinator writes to its
// internal topic, as AppendAsCoordinator describes: a batch of a producer
// id without sequences (base sequence -1) is accepted and, when
// transactional, joins its producer's transaction at apply. Such batches
// are not tracked in flight (they have no sequences to forecast).
func (r *Replica) PrepareAsCoordinator(b []byte, epoch int32) (Entry, AppendResult, error) {
	return r.prepareFenced(b, epoch, originCoordinator, nil)
}

// PrepareVerifiedAsCoordinator is PrepareAsCoordinator for the batch of
// a coordinator's write verified with guard (StartTxnVerification; 0 when
// none was needed), as TxnOffsetCommit's records are (KIP-890): a
// transactional batch that would begin its producer's transaction is
// refused with INVALID_TXN_STATE unless guard is still in force for the
// producer at the batch's epoch, so that a commit verified before its
// transaction ended cannot begin a transaction after the marker. Other
// errors as PrepareAsCoordinator's.
func (r *Replica) PrepareVerifiedAsCoordinator(b []byte, epoch int32, guard uint64) (Entry, AppendResult, error) {
	return r.prepareFenced(b, epoch, originCoordinator, &guard)
}

// PrepareMarker is Prepare for transaction marker m, which the leader
// builds itself (a control batch, stamped with the clock read here): the
// Entry to replicate, whose Apply ends m's producer's transaction on every
// replica. It checks m against the producer's state as the in-flight
// forecast has it: InvalidProducerEpoch for an epoch below the producer's,
// TransactionCoordinatorFenced for a coordinator epoch below that of the
// producer's last marker (Apply checks both again against the applied
// state). kerr.NotLeaderForPartition and ErrClosed as for Prepare.
func (r *Replica) PrepareMarker(m TxnMarker, epoch int32) (Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return Entry{}, ErrClosed
	}
	if err := r.fencePrepare(epoch); err != nil {
		return Entry{}, err
	}
	return r.prepareMarker(m, epoch, true)
}

// prepareMarker is PrepareMarker with r.mu held; check makes it check m
// against the forecast (Append leaves that to apply).
func (r *Replica) prepareMarker(m TxnMarker, epoch int32, check bool) (Entry, error) {
	if m.ProducerID < 0 || m.ProducerEpoch < 0 {
		return Entry{}, r.reject(kerr.InvalidRequest, fmt.Errorf("marker of producer %d epoch %d", m.ProducerID, m.ProducerEpoch))
	}
	if check {
		defer r.producers.discard()
		if err := r.producers.checkMarker(m, -1); err != nil {
			return Entry{}, r.reject(err, fmt.Errorf("marker of producer %d epoch %d coordinator epoch %d", m.ProducerID, m.ProducerEpoch, m.CoordinatorEpoch))
		}
	}
	// A produce verified before this marker must not begin a
	// transaction after it (txn_verify.go).
	if check {
		r.producers.markerPrepared(m)
	} else {
		r.producers.endVerification(m)
	}
	b := appendMarkerBatch(nil, m, r.now().UnixMilli())
	return Entry{Batches: b, LeaderEpoch: epoch, LogAppendTime: -1}, nil
}

// fencePrepare is Prepare's leader-epoch fence, with r.mu held.
func (r *Replica) fencePrepare(epoch int32) error {
	switch {
	case epoch < r.pendingEpoch:
		return r.reject(kerr.NotLeaderForPartition, fmt.Errorf("prepare in leader epoch %d after epoch %d", epoch, r.pendingEpoch))
	case epoch > r.pendingEpoch:
		r.producers.resetPending()
		r.pendingEpoch = epoch
	}
	return nil
}

// ResetPending forgets every prepared entry not yet applied: call it when
// leadership is lost (or a proposal is known to have failed), since those
// entries may never apply. Entries that do apply later are still checked
// and written correctly by Apply; only Prepare's forecast is dropped, so a
// retry of such a batch may be proposed again and is then recognised as a
// duplicate when it applies. Safe for concurrent use.
func (r *Replica) ResetPending() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.producers.resetPending()
}

// InFlight returns how many idempotent batches Prepare has accepted that
// have not applied yet (nor been dropped by ResetPending). Safe for
// concurrent use.
func (r *Replica) InFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.producers.inFlight()
}

// prepare is Prepare with r.mu held, without the epoch fence. track
// records the accepted batches as in flight: Prepare does; Append does not,
// since it applies them at once under the same lock. origin says whose
// batches b holds.
func (r *Replica) prepare(b []byte, epoch int32, track bool, origin origin) (Entry, AppendResult, error) {
	return r.prepareGuarded(b, epoch, track, origin, nil)
}

// prepareFenced is what every Prepare variant does: under Replica.mu, it
// refuses a closed replica and an epoch fenced by an earlier Prepare
// (fencePrepare), then prepares b, tracked in flight, with the
// verification guard when guard is not nil.
func (r *Replica) prepareFenced(b []byte, epoch int32, origin origin, guard *uint64) (Entry, AppendResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return Entry{}, AppendResult{}, ErrClosed
	}
	if err := r.fencePrepare(epoch); err != nil {
		return Entry{}, AppendResult{}, err
	}
	return r.prepareGuarded(b, epoch, true, origin, guard)
}

// prepareGuarded is prepare with, when guard is not nil, the verification
// guard check of PrepareVerified (txn_verify.go).
func (r *Replica) prepareGuarded(b []byte, epoch int32, track bool, origin origin, guard *uint64) (Entry, AppendResult, error) {
	if int64(len(b)) > r.cfg.Log.SegmentBytes {
		// As Kafka: a request must fit in one segment.
		return Entry{}, AppendResult{}, r.reject(kerr.RecordListTooLarge, fmt.Errorf("request of %d bytes above segment.bytes %d", len(b), r.cfg.Log.SegmentBytes))
	}

	// Validate every batch before looking at producer state, and check
	// every producer sequence before accepting anything, so a rejected
	// request leaves the producer state untouched.
	headers := r.headers[:0]
	defer func() { r.headers = headers[:0] }()
	for rest := b; len(rest) > 0; {
		h, err := r.validate(rest, origin)
		if err != nil {
			return Entry{}, AppendResult{}, err
		}
		headers = append(headers, h)
		rest = rest[h.Size():]
	}
	if len(headers) == 0 {
		return Entry{}, AppendResult{}, r.reject(kerr.CorruptMessage, fmt.Errorf("%w: no record batch in %d bytes", log.ErrCorrupt, len(b)))
	}

	appendTime := int64(-1)
	if r.cfg.TimestampType == LogAppendTime {
		appendTime = r.now().UnixMilli()
	}
	entry := Entry{Batches: b, LeaderEpoch: epoch, LogAppendTime: appendTime}
	if !track && len(r.producers.pending) == 0 {
		// Append applies at once, and with nothing in flight Apply's check
		// against the applied state is this very check, with the same
		// answers: make it once.
		return entry, AppendResult{}, nil
	}

	// Producer checks, in order, each against the state as staged by the
	// batches before it, over the in-flight forecast.
	defer r.producers.discard()
	var (
		duplicates, inFlight int
		dupResult            = AppendResult{LogAppendTime: -1, Duplicate: true}
	)
	for i := range headers {
		h := &headers[i]
		if h.Idempotent() && h.BaseSequence < 0 {
			// A coordinator's batch (validate refused it from a
			// client): nothing to forecast; Apply checks its epoch.
			// A verified one (TxnOffsetCommit) that would begin
			// its producer's transaction needs its guard still in
			// force, as a produce does.
			if guard != nil && h.Transactional() && !r.producers.underWay(h.ProducerID) {
				if err := r.producers.checkVerified(h.ProducerID, h.ProducerEpoch, *guard); err != nil {
					return Entry{}, AppendResult{}, r.reject(kerr.InvalidTxnState, err)
				}
			}
			continue
		}
		begins := false
		if guard != nil && h.Transactional() {
			begins = !r.producers.underWay(h.ProducerID)
		}
		m, duplicate, err := r.producers.checkPending(h)
		if err != nil {
			return Entry{}, AppendResult{}, r.reject(err, fmt.Errorf("producer %d epoch %d sequences [%d, %d] at batch %d of %d",
				h.ProducerID, h.ProducerEpoch, h.BaseSequence, h.LastSequence(), i, len(headers)))
		}
		if begins && !duplicate {
			if err := r.producers.checkVerified(h.ProducerID, h.ProducerEpoch, *guard); err != nil {
				return Entry{}, AppendResult{}, r.reject(kerr.InvalidTxnState, err)
			}
		}
		switch {
		case !duplicate:
			continue
		case m.baseOffset < 0:
			inFlight++
			continue
		}
		if duplicates == 0 {
			dupResult.BaseOffset = m.baseOffset
		}
		dupResult.LastOffset = m.lastOffset
		if appendTime >= 0 {
			dupResult.LogAppendTime = m.timestamp
		}
		duplicates++
	}
	switch {
	case duplicates+inFlight == 0:
	case duplicates+inFlight != len(headers):
		return Entry{}, AppendResult{}, r.reject(kerr.InvalidRecord, fmt.Errorf("%d of %d batches are retries of batches already in the log", duplicates+inFlight, len(headers)))
	case inFlight > 0:
		r.logger.Debug("retry of batches in flight refused",
			zap.Int("in-flight", inFlight),
			zap.Int("batches", len(headers)))
		return Entry{}, AppendResult{}, ErrInFlight
	default:
		dupResult.LogStartOffset = r.log.StartOffset()
		r.logger.Debug("duplicate append ignored",
			zap.Int64("base-offset", dupResult.BaseOffset),
			zap.Int64("last-offset", dupResult.LastOffset))
		return Entry{}, dupResult, nil
	}

	if track {
		r.producers.commitPending(headers)
	}
	if guard != nil {
		// The transactions begun are under way now in the forecast:
		// their guards have done their work. A coordinator's batch is
		// not forecast, so its transaction is under way only once it
		// applies: its guard stays until a marker ends it, for another
		// append verified meanwhile with the same guard.
		for i := range headers {
			if headers[i].Transactional() && headers[i].BaseSequence >= 0 {
				delete(r.producers.verifications, headers[i].ProducerID)
			}
		}
	}
	return entry, AppendResult{}, nil
}
