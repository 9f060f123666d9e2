package partition

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Verification guard (KIP-890, Kafka's VerificationStateEntry). A
// transactional produce that would begin its producer's transaction on
// this partition is first verified with the transaction coordinator (the
// wire layer asks it, or has it add the partition). A produce verified
// just before its transaction ends could otherwise land after the
// transaction's marker and begin a transaction the coordinator knows
// nothing of: nothing would ever end it, and the LSO would stay below it
// for good. So the leader hands out a guard before the coordinator is
// asked (StartTxnVerification), a marker for the producer prepared
// meanwhile ends the guard, and the append (PrepareVerified) that would
// begin the transaction must present a guard still in force, else
// INVALID_TXN_STATE, with nothing stored.
//
// Under transaction version 2 (a verification that added the partition,
// Produce v12+) the end of each transaction bumps the producer epoch and
// its markers carry the bumped epoch: a late produce of the ended
// transaction has the older epoch and is fenced by it
// (INVALID_PRODUCER_EPOCH), and a produce at the marker's epoch belongs
// to the next transaction. So a marker ends only version 2 guards of an
// older epoch, and version 1 guards of its epoch or older.
//
// A transaction counts as under way (no guard needed) only while no
// marker for the producer is in flight: a marker prepared but not yet
// applied has not ended the transaction in the forecast, yet a batch
// prepared after it applies after it (markersInFlight).
//
// Guards live in the leader's memory only (a new leader verifies again)
// and are dropped with the in-flight forecast (resetPending).

// maxVerifications bounds the guards of a partition; when it is full
// they are all dropped (their produces answer INVALID_TXN_STATE).
const maxVerifications = 1 << 16

// txnVerification is a guard in force for one producer.
type txnVerification struct {
	guard uint64
	epoch int16
	// bumpsEpoch marks a verification of transaction version 2.
	bumpsEpoch bool
}

// StartTxnVerification starts the verification of a transactional produce
// of producerID at epoch (bumpsEpoch: under transaction version 2) that
// this replica leads, before the transaction coordinator is asked. It
// returns the guard to pass to PrepareVerified, or 0 when the producer's
// transaction at epoch is already under way here (no verification is
// needed; PrepareVerified checks it again). A verification under way for
// the same producer and epoch shares its guard. leaderEpoch is the
// leader epoch the produce will be prepared in, fenced as Prepare fences
// it (a guard is good only in its leader epoch). Errors: ErrClosed,
// NotLeaderForPartition for a leader epoch below the latest prepared.
func (r *Replica) StartTxnVerification(producerID int64, epoch int16, bumpsEpoch bool, leaderEpoch int32) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return 0, ErrClosed
	}
	if err := r.fencePrepare(leaderEpoch); err != nil {
		return 0, err
	}
	return r.producers.startVerification(producerID, epoch, bumpsEpoch), nil
}

// PrepareVerified is Prepare for the batches of a transactional produce
// verified with guard (StartTxnVerification; 0 when none was needed): a
// transactional batch that would begin its producer's transaction is
// refused with INVALID_TXN_STATE unless guard is still in force for the
// producer at the batch's epoch. Other errors as Prepare's.
func (r *Replica) PrepareVerified(b []byte, epoch int32, guard uint64) (Entry, AppendResult, error) {
	return r.prepareFenced(b, epoch, originClient, &guard)
}

// startVerification is StartTxnVerification under Replica.mu.
func (s *producerStates) startVerification(producerID int64, epoch int16, bumpsEpoch bool) uint64 {
	if s.underWay(producerID) {
		if e, _ := s.lookupPending(producerID); e.epoch == epoch {
			return 0
		}
	}
	if v, ok := s.verifications[producerID]; ok && v.epoch == epoch && v.bumpsEpoch == bumpsEpoch {
		return v.guard
	}
	if s.verifications == nil || len(s.verifications) >= maxVerifications {
		s.verifications = make(map[int64]txnVerification)
	}
	s.nextGuard++
	s.verifications[producerID] = txnVerification{guard: s.nextGuard, epoch: epoch, bumpsEpoch: bumpsEpoch}
	return s.nextGuard
}

// underWay reports whether producerID's transaction is under way on the
// partition as the leader forecasts it: begun, and no marker for the
// producer prepared since (a marker in flight has not ended it in the
// forecast yet, but a batch prepared after it lands after it).
func (s *producerStates) underWay(producerID int64) bool {
	e, ok := s.lookupPending(producerID)
	return ok && e.inTxn && s.markersInFlight[producerID] == 0
}

// markerPrepared records a marker of producerID prepared by the leader:
// it ends the guards it ends and is in flight until it applies.
func (s *producerStates) markerPrepared(m TxnMarker) {
	s.endVerification(m)
	if s.markersInFlight == nil {
		s.markersInFlight = make(map[int64]int)
	}
	s.markersInFlight[m.ProducerID]++
}

// markerApplied ends the flight of a marker of producerID, if this
// leader prepared one.
func (s *producerStates) markerApplied(producerID int64) {
	switch n := s.markersInFlight[producerID]; {
	case n > 1:
		s.markersInFlight[producerID] = n - 1
	case n == 1:
		delete(s.markersInFlight, producerID)
	}
}

// checkVerified is the guard check of a transactional batch of
// producerID at epoch that begins its transaction (Replica.mu held).
func (s *producerStates) checkVerified(producerID int64, epoch int16, guard uint64) error {
	v, ok := s.verifications[producerID]
	if guard != 0 && ok && v.guard == guard && v.epoch == epoch {
		return nil
	}
	return fmt.Errorf("producer %d epoch %d begins a transaction without a verification in force (its transaction ended meanwhile): %w",
		producerID, epoch, kerr.InvalidTxnState)
}

// endVerification ends the guards marker m ends (see above).
func (s *producerStates) endVerification(m TxnMarker) {
	v, ok := s.verifications[m.ProducerID]
	if !ok {
		return
	}
	if v.epoch < m.ProducerEpoch || !v.bumpsEpoch && v.epoch == m.ProducerEpoch {
		delete(s.verifications, m.ProducerID)
	}
}
