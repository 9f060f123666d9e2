package raftgroup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sluice-io/sluice/replication/transport"
)

// longConfig has Raft timeouts far longer than any wait of the tests
// below: whatever elects there is failover, not Raft's own timers.
func longConfig() Config {
	c := DefaultConfig()
	c.HeartbeatTimeout = 30 * time.Second
	c.ElectionTimeout = 30 * time.Second
	c.LeaderLeaseTimeout = 2 * time.Second
	c.CommitTimeout = 50 * time.Millisecond
	c.FailoverStagger = 500 * time.Millisecond
	return c
}

// fastDetector gives every node's transport a short failure timeout.
func fastDetector(c *transport.Config) { c.PeerFailureTimeout = 300 * time.Millisecond }

// waitNewLeader waits up to within for a node other than old to lead.
func (c *cluster) waitNewLeader(old *node, within time.Duration) *node {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, nd := range c.liveNodes() {
			if nd != old && nd.group.IsLeader() {
				return nd
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no new leader within %v", within)
		}
		time.Sleep(10 * time.Millisecond) // leadership of other nodes: polled with a deadline
	}
}

// TestGroupFailoverOnDeadNode: with Raft timeouts of a minute, a new
// group elects at once (the first of its servers), and when the leader's
// node dies (its transport closes: connections reset, dials refused) the
// followers elect a new leader within a few seconds, which takes appends
// after the old ones.
func TestGroupFailoverOnDeadNode(t *testing.T) {
	cfg := longConfig()
	start := time.Now()
	c := newClusterMux(t, 3, cfg, true, fastDetector)
	first := c.waitNewLeader(nil, 10*time.Second)
	t.Logf("bootstrap: node %s leads after %v", first.id, time.Since(start))
	if first != c.nodes[0] {
		t.Errorf("node %s leads a new group, want the first of its servers", first.id)
	}
	c.appendRetrying(batch(t, 0, 3))

	killed := time.Now()
	if err := first.mux.Close(); err != nil {
		t.Fatal(err)
	}
	next := c.waitNewLeader(first, 10*time.Second)
	took := time.Since(killed)
	t.Logf("node %s leads %v after node %s's transport closed", next.id, took, first.id)
	if took > cfg.HeartbeatTimeout/4 {
		t.Errorf("failover took %v: Raft's timers, not the detector", took)
	}
	// The dead node's group still runs; take it out as a crash would
	// leave it, so only the survivors take part from here.
	c.stop(first)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := next.group.Append(ctx, batch(t, 3, 2))
	if err != nil || res.BaseOffset != 3 {
		t.Fatalf("append on the new leader: %+v, %v; want base offset 3", res, err)
	}
}

// TestGroupFailoverWholeRestart: with Raft timeouts of 30 s, every node
// shut down and started again (no leader left to be declared dead) elects
// a leader after about HeartbeatTimeout/5, through a pre-vote, not on
// Raft's timers; the log is intact.
func TestGroupFailoverWholeRestart(t *testing.T) {
	cfg := longConfig()
	c := newClusterMux(t, 3, cfg, true, fastDetector)
	c.waitNewLeader(nil, 10*time.Second)
	c.appendRetrying(batch(t, 0, 3))
	for _, nd := range c.nodes {
		c.stop(nd)
	}
	restarted := time.Now()
	for _, nd := range c.nodes {
		c.start(nd)
	}
	l := c.waitNewLeader(nil, cfg.HeartbeatTimeout*3/4)
	took := time.Since(restarted)
	t.Logf("node %s leads %v after every node restarted", l.id, took)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := l.group.Append(ctx, batch(t, 3, 2))
	if err != nil || res.BaseOffset != 3 {
		t.Fatalf("append after the restart: %+v, %v; want base offset 3", res, err)
	}
}

// TestElectionRank: every replica computes the same order, the dead
// leader and peers held down are left out, non-voters never rank, and
// the first in rank varies with the group.
func TestElectionRank(t *testing.T) {
	servers := []raft.Server{
		{ID: "1", Address: "a", Suffrage: raft.Voter},
		{ID: "2", Address: "b", Suffrage: raft.Voter},
		{ID: "3", Address: "c", Suffrage: raft.Voter},
		{ID: "4", Address: "d", Suffrage: raft.Nonvoter},
	}
	none := func(raft.ServerAddress) bool { return false }
	firsts := map[raft.ServerID]int{}
	for g := range 60 {
		group := fmt.Sprintf("topic-%d", g)
		ranks := map[int]raft.ServerID{}
		for _, s := range servers[1:] {
			r := electionRank(group, s.ID, "a", servers, none)
			if s.Suffrage != raft.Voter {
				if r != -1 {
					t.Fatalf("%s: non-voter %s ranked %d", group, s.ID, r)
				}
				continue
			}
			if other, ok := ranks[r]; ok || r < 0 || r > 1 {
				t.Fatalf("%s: %s ranked %d (already %q)", group, s.ID, r, other)
			}
			ranks[r] = s.ID
		}
		firsts[ranks[0]]++
		if r := electionRank(group, "1", "a", servers, none); r != -1 {
			t.Fatalf("%s: the dead leader ranked %d", group, r)
		}
		// With 3 held down, 2 is alone: first, whatever the hash.
		if r := electionRank(group, "2", "a", servers, func(a raft.ServerAddress) bool { return a == "c" }); r != 0 {
			t.Fatalf("%s: the only live voter ranked %d", group, r)
		}
	}
	if firsts["2"] == 0 || firsts["3"] == 0 {
		t.Errorf("first in rank over 60 groups: %v, want both survivors", firsts)
	}
}
