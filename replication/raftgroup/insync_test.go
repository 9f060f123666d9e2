package raftgroup

import (
	"slices"
	"testing"
	"time"
)

// inSyncWithin polls the leader's InSync until it includes (or, with
// want false, excludes) id, for at most within.
func (c *cluster) inSyncWithin(l *node, id int32, want bool, within time.Duration) bool {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if slices.Contains(l.group.InSync([]int32{1, 2, 3}), id) == want {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // InSync has no signal: polled with a deadline
	}
}

// TestGroupInSyncAfterRemovedAndAdded: a replica out of sync because its
// heartbeats failed, removed from the group and added again (as a
// reassignment does), is in sync as soon as the new replication reaches
// it. Its old heartbeat goroutine stopped without a success to report,
// and the new one has no failure to resume from: the leader kept it out
// of sync until its next change of leadership.
func TestGroupInSyncAfterRemovedAndAdded(t *testing.T) {
	cfg := testConfig()
	// Long enough that a failure kept to its expiry (heartbeatFailedLag)
	// outlasts the wait below by far.
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, time.Second
	c := newClusterMux(t, 3, cfg, true, nil)
	l := c.leader()
	f := c.follower()
	fid := mustAtoi(t, string(f.id))
	c.appendRetrying(batch(t, 0, 1))
	c.converged(1)

	c.stop(f)
	if !c.inSyncWithin(l, fid, false, 10*time.Second) {
		t.Fatalf("replica %s stopped, still in sync after 10s", f.id)
	}
	if err := l.group.raft.RemoveServer(f.id, 0, 5*time.Second).Error(); err != nil {
		t.Fatalf("remove %s: %v", f.id, err)
	}
	c.start(f)
	if err := l.group.raft.AddVoter(f.id, f.addr, 0, 5*time.Second).Error(); err != nil {
		t.Fatalf("add %s back: %v", f.id, err)
	}
	c.appendRetrying(batch(t, 1, 1))
	c.converged(2)
	if !c.inSyncWithin(l, fid, true, cfg.HeartbeatTimeout/2) {
		t.Fatalf("replica %s added back and caught up: InSync %v after %v, want it in", f.id, l.group.InSync([]int32{1, 2, 3}), cfg.HeartbeatTimeout/2)
	}
}

// TestInSyncIgnoresOldHeartbeatFailure: a failed heartbeat no later
// observation answered (the observer dropped the resumption) keeps its
// replica out of sync for heartbeatFailedLag heartbeat timeouts, not for
// ever; a recent one keeps it out.
func TestInSyncIgnoresOldHeartbeatFailure(t *testing.T) {
	g := &Group{cfg: testConfig()}
	g.noteHeartbeatFailed("2")
	g.noteHeartbeatFailed("3")
	g.unreachable["2"] = time.Now().Add(-(heartbeatFailedLag + 1) * g.cfg.HeartbeatTimeout)
	if got := g.InSync([]int32{1, 2, 3}); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("InSync = %v, want [1 2]: 2's failure is stale, 3's recent", got)
	}
	g.forgetHeartbeatFailed("3")
	if got := g.InSync([]int32{1, 2, 3}); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("InSync = %v after 3's heartbeats resumed, want every replica", got)
	}
}

// TestGroupCatchUpEndsReadingLog: the leader stops counting a replica as
// catching up from its log as soon as the replica's snapshot install is
// answered, not readingLogLag heartbeat timeouts after its last read.
func TestGroupCatchUpEndsReadingLog(t *testing.T) {
	cfg := catchUpConfig()
	// Long enough that readingLogLag alone would outlast the wait below.
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 5*time.Second, 5*time.Second, time.Second
	c := newClusterMux(t, 3, cfg, true, nil)
	down := c.follower()
	c.stop(down)
	const n = 20
	for seq := range int32(n) {
		c.appendRetrying(bigBatch(t, seq, 64<<10))
	}
	c.converged(n)
	c.compact()
	var reads served
	c.hookServers(reads.hook)
	c.start(down)
	c.converged(n)
	if len(reads.list()) == 0 {
		t.Fatal("the replica caught up without reading the leader's log: the test needs a snapshot install")
	}
	l := c.leader()
	reading := func() bool {
		l.group.syncMu.Lock()
		defer l.group.syncMu.Unlock()
		_, ok := l.group.readingLog[down.id]
		return ok
	}
	deadline := time.Now().Add(2 * time.Second)
	for reading() {
		if time.Now().After(deadline) {
			t.Fatalf("replica %s restored, still counted as reading the leader's log 2s later", down.id)
		}
		time.Sleep(10 * time.Millisecond) // no signal for it: polled with a deadline
	}
}
