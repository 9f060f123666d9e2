package partition

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// prepareApply prepares b verified with guard in leader epoch 1 and
// applies it, returning the error of either step.
func prepareApply(t *testing.T, r *Replica, b []byte, guard uint64) error {
	t.Helper()
	e, res, err := r.PrepareVerified(b, 1, guard)
	if err != nil || res.Duplicate {
		return err
	}
	_, err = r.Apply(cloneEntry(e))
	return err
}

// markerApplied prepares and applies marker m in leader epoch 1.
func markerApplied(t *testing.T, r *Replica, m TxnMarker) {
	t.Helper()
	e, err := r.PrepareMarker(m, 1)
	if err != nil {
		t.Fatalf("PrepareMarker(%+v): %v", m, err)
	}
	if _, err := r.Apply(cloneEntry(e)); err != nil {
		t.Fatalf("Apply marker %+v: %v", m, err)
	}
}

// TestVerificationGuard checks the hanging-transaction guard: a
// transactional produce verified before its transaction's marker, and
// appended after it, is refused with INVALID_TXN_STATE and leaves no
// transaction open (the LSO reaches the log end), while one that begins
// its transaction under a guard in force, or continues one under way,
// is accepted.
func TestVerificationGuard(t *testing.T) {
	env := newEnv(t)
	r := env.open(t)
	const pid, epoch = 7, 0

	guard, err := r.StartTxnVerification(pid, epoch, false, 1)
	if err != nil || guard == 0 {
		t.Fatalf("StartTxnVerification: %d, %v; want a guard", guard, err)
	}
	if again, _ := r.StartTxnVerification(pid, epoch, false, 1); again != guard {
		t.Errorf("a second verification under way got guard %d, want the shared %d", again, guard)
	}
	if err := prepareApply(t, r, txnBatch(t, pid, epoch, 0, 2), guard+1); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("append with a guard not handed out: %v, want INVALID_TXN_STATE", err)
	}
	if err := prepareApply(t, r, txnBatch(t, pid, epoch, 0, 2), guard); err != nil {
		t.Fatalf("append under the guard: %v", err)
	}
	// The transaction is under way: no verification needed.
	if g, _ := r.StartTxnVerification(pid, epoch, false, 1); g != 0 {
		t.Errorf("verification of an ongoing transaction: guard %d, want 0", g)
	}
	if err := prepareApply(t, r, txnBatch(t, pid, epoch, 2, 1), 0); err != nil {
		t.Fatalf("append to the ongoing transaction: %v", err)
	}

	// The race: the next produce is verified while the transaction is
	// still under way (so it needs no guard) ... then the marker lands
	// ... then the produce is appended: it would begin a transaction
	// nobody ends.
	if g, _ := r.StartTxnVerification(pid, epoch, false, 1); g != 0 {
		t.Fatalf("guard %d, want 0 (ongoing)", g)
	}
	markerApplied(t, r, marker(pid, epoch, true))
	if err := prepareApply(t, r, txnBatch(t, pid, epoch, 3, 1), 0); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("produce verified before the marker, appended after: %v, want INVALID_TXN_STATE", err)
	}
	// The same while the marker is in flight: prepared by the leader,
	// not applied yet. The produce prepared after it would apply after
	// it.
	mustPrepareApply := func(b []byte, guard uint64) {
		t.Helper()
		if err := prepareApply(t, r, b, guard); err != nil {
			t.Fatal(err)
		}
	}
	g, _ := r.StartTxnVerification(pid, epoch, false, 1)
	mustPrepareApply(txnBatch(t, pid, epoch, 3, 1), g)
	if g, _ := r.StartTxnVerification(pid, epoch, false, 1); g != 0 {
		t.Fatalf("guard %d, want 0 (ongoing)", g)
	}
	inFlight, err := r.PrepareMarker(marker(pid, epoch, false), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.PrepareVerified(txnBatch(t, pid, epoch, 4, 1), 1, 0); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("produce prepared behind a marker in flight: %v, want INVALID_TXN_STATE", err)
	}
	if _, err := r.Apply(cloneEntry(inFlight)); err != nil {
		t.Fatal(err)
	}

	// The same with a guard handed out before the marker.
	late, _ := r.StartTxnVerification(pid, epoch, false, 1)
	if late == 0 {
		t.Fatal("no guard after the marker")
	}
	markerApplied(t, r, marker(pid, epoch, false))
	if err := prepareApply(t, r, txnBatch(t, pid, epoch, 4, 1), late); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("produce whose guard a marker ended: %v, want INVALID_TXN_STATE", err)
	}
	if o := r.Offsets(); o.LastStable != o.HighWatermark || o.HighWatermark != o.LogEnd {
		t.Fatalf("offsets %+v: a transaction was left open", o)
	}

	// Transaction version 2: a marker at the bumped epoch does not end
	// a guard of that epoch (the next transaction's), and the old epoch
	// is fenced by the marker's.
	next, _ := r.StartTxnVerification(pid, epoch+1, true, 1)
	markerApplied(t, r, marker(pid, epoch+1, true))
	if err := prepareApply(t, r, txnBatch(t, pid, epoch, 4, 1), 0); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("late produce at the epoch before the bump: %v, want INVALID_PRODUCER_EPOCH", err)
	}
	if err := prepareApply(t, r, txnBatch(t, pid, epoch+1, 0, 1), next); err != nil {
		t.Fatalf("next transaction's produce, verified before the bumped marker: %v", err)
	}
	markerApplied(t, r, marker(pid, epoch+2, true))
	if o := r.Offsets(); o.LastStable != o.LogEnd {
		t.Fatalf("offsets %+v after the last marker", o)
	}

	// A new leader epoch drops the guards.
	g, _ = r.StartTxnVerification(pid, epoch+2, true, 1)
	if _, _, err := r.PrepareVerified(txnBatch(t, pid, epoch+2, 0, 1), 2, g); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("guard of the previous leader epoch: %v, want INVALID_TXN_STATE", err)
	}
}

// TestVerificationGuardCoordinatorBatch checks the guard on a
// coordinator's transactional batch without sequences (TxnOffsetCommit's
// records in __consumer_offsets): one verified before its transaction's
// marker and prepared after it is refused with INVALID_TXN_STATE and
// leaves no transaction open; one under a guard in force begins the
// transaction, and a second commit verified with the same guard before
// the first applied is accepted too.
func TestVerificationGuardCoordinatorBatch(t *testing.T) {
	env := newEnv(t)
	r := env.open(t)
	const pid, epoch = 9, 0
	prepareApplyCoordinator := func(b []byte, guard uint64) error {
		t.Helper()
		e, _, err := r.PrepareVerifiedAsCoordinator(b, 1, guard)
		if err != nil {
			return err
		}
		_, err = r.Apply(cloneEntry(e))
		return err
	}

	if err := prepareApplyCoordinator(txnBatch(t, pid, epoch, -1, 1), 0); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("coordinator batch without a verification: %v, want INVALID_TXN_STATE", err)
	}
	guard, err := r.StartTxnVerification(pid, epoch, false, 1)
	if err != nil || guard == 0 {
		t.Fatalf("StartTxnVerification: %d, %v; want a guard", guard, err)
	}
	shared, _ := r.StartTxnVerification(pid, epoch, false, 1)
	first, _, err := r.PrepareVerifiedAsCoordinator(txnBatch(t, pid, epoch, -1, 1), 1, guard)
	if err != nil {
		t.Fatalf("coordinator batch under the guard: %v", err)
	}
	second, _, err := r.PrepareVerifiedAsCoordinator(txnBatch(t, pid, epoch, -1, 1), 1, shared)
	if err != nil {
		t.Fatalf("second coordinator batch under the shared guard, before the first applied: %v", err)
	}
	for _, e := range []Entry{first, second} {
		if _, err := r.Apply(cloneEntry(e)); err != nil {
			t.Fatal(err)
		}
	}
	if o := r.Offsets(); o.LastStable != 0 {
		t.Fatalf("offsets %+v: the transaction is not open", o)
	}
	// Under way: no verification needed until the marker.
	if g, _ := r.StartTxnVerification(pid, epoch, false, 1); g != 0 {
		t.Errorf("verification of an ongoing transaction: guard %d, want 0", g)
	}
	markerApplied(t, r, marker(pid, epoch, true))

	// The late commit: verified while the transaction was under way (no
	// guard), or with a guard the marker ended, and prepared after it.
	if err := prepareApplyCoordinator(txnBatch(t, pid, epoch, -1, 1), 0); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("commit verified before the marker, appended after: %v, want INVALID_TXN_STATE", err)
	}
	late, _ := r.StartTxnVerification(pid, epoch, false, 1)
	if late == 0 {
		t.Fatal("no guard after the marker")
	}
	markerApplied(t, r, marker(pid, epoch, false))
	if err := prepareApplyCoordinator(txnBatch(t, pid, epoch, -1, 1), late); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("commit whose guard a marker ended: %v, want INVALID_TXN_STATE", err)
	}
	if o := r.Offsets(); o.LastStable != o.HighWatermark || o.HighWatermark != o.LogEnd {
		t.Fatalf("offsets %+v: a transaction was left open", o)
	}
}
