package partition

import (
	"encoding/binary"
	"testing"
)

// TestCloseSnapshotCoversOnlyAppliedBatches: a replicated replica's log
// may hold batches its Raft log store wrote but Raft has not applied yet
// (a follower that has not learned the commit index when it is closed).
// The snapshot Close writes must describe the applied batches only, so
// the next Open replays the rest from the log; a snapshot claiming the
// whole log lost the producer's sequence, and its next batch was
// OUT_OF_ORDER_SEQUENCE_NUMBER on the node that led after a restart.
func TestCloseSnapshotCoversOnlyAppliedBatches(t *testing.T) {
	env := newEnv(t)
	r := openQuiet(t, env)
	applied := idem(7, 0, 0, 2).build(t)
	e, _, err := r.Prepare(applied, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SegmentLog().Append(e.Batches); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ApplyStored(e.Batches, 0, 1); err != nil {
		t.Fatal(err)
	}
	// Stored by the Raft log store, not applied: on a follower.
	e, _, err = r.Prepare(idem(7, 0, 2, 3).build(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	stored := e.Batches
	binary.BigEndian.PutUint64(stored, 2) // the base offset the store writes it at
	if err := r.SegmentLog().Append(stored); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r2 := env.open(t)
	// Raft replays the stored entry after the restart: the state has it
	// already, from Open's replay of the log.
	if _, err := r2.ApplyStored(stored, 2, 1); err != nil {
		t.Fatalf("replayed entry: %v", err)
	}
	r2.SetLeaderEpoch(2)
	if _, _, err := r2.Prepare(idem(7, 0, 5, 1).build(t), 2); err != nil {
		t.Fatalf("the producer's next batch after the restart: %v", err)
	}
	if _, res, err := r2.Prepare(idem(7, 0, 2, 3).build(t), 2); err == nil && !res.Duplicate {
		t.Fatalf("a retry of the stored batch after the restart: %+v, not a duplicate", res)
	}
}
