package raftgroup

import (
	"testing"
	"time"
)

// TestGroupSnapshotsAsEntriesApply: a replica snapshots once
// SnapshotThreshold entries applied, without Raft's timer (an hour's
// interval puts it 30 hours away), at most once per SnapshotInterval.
func TestGroupSnapshotsAsEntriesApply(t *testing.T) {
	cfg := testConfig()
	cfg.SnapshotThreshold = 10
	cfg.SnapshotInterval = time.Hour
	c := newClusterWith(t, 3, cfg)
	var seq int32
	var end int64
	appendN := func(n int) {
		for range n {
			c.appendRetrying(batch(t, seq, 1))
			seq++
			end++
		}
		c.converged(end)
	}
	snapshots := func(nd *node) []uint64 {
		metas, err := nd.group.snaps.List()
		if err != nil {
			t.Fatal(err)
		}
		var idx []uint64
		for _, m := range metas {
			idx = append(idx, m.Index)
		}
		return idx
	}
	appendN(9)
	for _, nd := range c.nodes {
		if s := snapshots(nd); len(s) != 0 {
			t.Fatalf("replica %s snapshotted at %v after 9 entries, threshold 10", nd.id, s)
		}
	}
	appendN(2)
	pollUntil(t, "a snapshot on every replica after 11 entries", func() bool {
		for _, nd := range c.nodes {
			if len(snapshots(nd)) != 1 {
				return false
			}
		}
		return true
	})
	// Within the interval, more entries take no other snapshot.
	appendN(30)
	for _, nd := range c.nodes {
		if s := snapshots(nd); len(s) != 1 {
			t.Fatalf("replica %s has snapshots %v within the interval of its first, want one", nd.id, s)
		}
	}
	// Once the interval has passed, the next threshold's worth of entries
	// takes one.
	for _, nd := range c.nodes {
		nd.group.lastSnapshot.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	}
	appendN(10)
	pollUntil(t, "a second snapshot on every replica once the interval passed", func() bool {
		for _, nd := range c.nodes {
			if len(snapshots(nd)) != 2 {
				return false
			}
		}
		return true
	})
}

// pollUntil checks cond every 5ms until it holds, for up to 10s: a
// snapshot runs on a goroutine of its own and signals nothing.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
