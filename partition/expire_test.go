package partition

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// at returns b with every record at timestamp ts.
func at(b testBatch, ts int64) testBatch {
	for i := range b.records {
		b.records[i].timestamp = ts
	}
	return b
}

// producerIDs returns the ids of the producers r knows.
func producerIDs(t *testing.T, r *Replica) []int64 {
	t.Helper()
	ps, err := r.Producers()
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, p := range ps {
		ids = append(ids, p.ProducerID)
	}
	return ids
}

// TestProducerExpiry checks producer.id.expiration.ms: an idle producer's
// state is removed once the partition's clock (the largest timestamp in
// its log) is the expiration past its last batch, so its next batch is
// that of an unknown producer; one with a transaction under way is kept;
// and a restart, from a snapshot or from the log alone, reaches the same
// state (every replica must).
func TestProducerExpiry(t *testing.T) {
	const hour = int64(time.Hour / time.Millisecond)
	t0 := int64(1_700_000_000_000)
	env := newEnv(t)
	env.cfg.ProducerIDExpiration = time.Hour
	r := env.open(t)

	mustAppend(t, r, at(idem(1, 0, 0, 2), t0).build(t))        // idle from t0
	mustAppend(t, r, txnBatch(t, 2, 0, 0, 1))                  // a transaction, at 1000
	mustAppend(t, r, at(idem(3, 0, 0, 1), t0+hour/2).build(t)) // active later
	mustAppend(t, r, at(plain(1, 0), t0+hour+hour/4).build(t)) // the clock moves on
	if got := producerIDs(t, r); !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("producers after the clock passed the expiration of 1: %v, want [2 3]", got)
	}
	// The expired producer's next batch is an unknown producer's.
	if _, err := r.Append(at(idem(1, 0, 2, 1), t0+hour+hour/4).build(t)); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("expired producer continuing its sequence: %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", err)
	}
	mustAppend(t, r, at(idem(1, 0, 0, 1), t0+hour+hour/4).build(t))
	// Long after: 3 expires, 2 stays while its transaction is open, and
	// expires once its marker ended it and the clock passed again.
	mustAppend(t, r, at(plain(1, 0), t0+3*hour).build(t))
	if got := producerIDs(t, r); !slices.Equal(got, []int64{2}) {
		t.Fatalf("producers two hours later: %v, want [2] (in a transaction)", got)
	}
	mustMarker(t, r, marker(2, 0, true))
	mustAppend(t, r, at(idem(4, 0, 0, 1), t0+3*hour).build(t))
	want := viewTxns(t, r)

	// A restart from the snapshot, then one from the log alone.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = env.open(t)
	if got := viewTxns(t, r); !got.equal(want) {
		t.Fatalf("after a restart from the snapshot:\n got %+v\nwant %+v", got, want)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := env.fs.Remove(env.dir + "/" + snapshotFile); err != nil {
		t.Fatal(err)
	}
	r = env.open(t)
	if got := viewTxns(t, r); !got.equal(want) {
		t.Fatalf("after a rebuild from the log:\n got %+v\nwant %+v", got, want)
	}
	// Two hours after the last batch, every producer is idle.
	mustAppend(t, r, at(plain(1, 0), 1_700_000_000_000+5*hour).build(t))
	if got := producerIDs(t, r); len(got) != 0 {
		t.Fatalf("producers at t0+5h: %v, want none", got)
	}
}
