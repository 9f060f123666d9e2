package raftgroup

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
)

// TestGroupStorageFailureStepsDown: when the leader's disk fails a write
// or an fsync, the append is answered KAFKA_STORAGE_ERROR, the replica
// leaves the group (it neither leads nor votes again, even once the disk
// answers), says why, and the other two elect a leader that holds every
// acknowledged batch and goes on appending.
func TestGroupStorageFailureStepsDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  log.FaultOp
		err  syscall.Errno
		// tcp: over replication/transport, whose Leaving announcement
		// makes the others elect at once, while the failed replica's raft
		// may still run (it detaches first: a vote would make it store
		// the term on its failed disk, and raft panics when that fails).
		tcp bool
	}{
		{"fsync", log.FaultSync, syscall.EIO, false},
		{"write", log.FaultWrite, syscall.ENOSPC, false},
		{"fsync-tcp", log.FaultSync, syscall.EIO, true},
		{"write-tcp", log.FaultWrite, syscall.ENOSPC, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(&cluster{t: t, cfg: testConfig(), faults: true, tcp: tc.tcp}, 3)
			var seq int32
			var end int64
			for range 10 {
				c.appendRetrying(batch(t, seq, 2))
				seq, end = seq+2, end+2
			}
			c.converged(end)

			failed := c.leader()
			failed.fs.Inject(log.Fault{Ops: tc.ops, Err: tc.err})
			_, err := failed.group.Append(context.Background(), batch(t, seq, 2))
			if !errors.Is(err, kerr.KafkaStorageError) {
				t.Fatalf("append on a leader whose disk fails: %v, want KAFKA_STORAGE_ERROR", err)
			}
			if got := failed.group.Failed(); !errors.Is(got, tc.err) || !log.IsStorageError(got) {
				t.Fatalf("Failed() = %v, want a storage error wrapping %v", got, tc.err)
			}
			if _, err := failed.group.Propose(batch(t, seq, 2)); !errors.Is(err, kerr.KafkaStorageError) {
				t.Fatalf("propose on a failed replica: %v, want KAFKA_STORAGE_ERROR", err)
			}
			// The record the failed leader refused is retried on the new
			// leader, as a client does; so is everything after it.
			for range 10 {
				res := c.appendRetrying(batch(t, seq, 2))
				if res.BaseOffset != end {
					t.Fatalf("append after the failover at %d, want %d", res.BaseOffset, end)
				}
				seq, end = seq+2, end+2
			}
			if l := c.leader(); l == failed {
				t.Fatal("the failed replica leads")
			}

			// The failed replica's Raft is shut down: it will not vote.
			waitState(t, failed.group, raft.Shutdown)
			// Even with the disk back it stays out until a restart.
			failed.fs.Clear()
			for range 5 {
				c.appendRetrying(batch(t, seq, 2))
				seq, end = seq+2, end+2
			}
			if failed.group.IsLeader() || failed.group.raft.State() != raft.Shutdown {
				t.Fatalf("failed replica: leader %v, raft state %v after the disk answered again", failed.group.IsLeader(), failed.group.raft.State())
			}
			live := []*node{}
			for _, nd := range c.nodes {
				if nd != failed {
					live = append(live, nd)
				}
			}
			c.waitFor(fmt.Sprintf("both other replicas committed up to %d", end), func() bool {
				for _, nd := range live {
					if nd.replica.Offsets().HighWatermark != end {
						return false
					}
				}
				return true
			})

			// A restart recovers it: it rejoins and catches up. Closing
			// its replica reports the failed fsync again, if that was it.
			if err := failed.group.Close(); err != nil {
				t.Fatalf("close failed group: %v", err)
			}
			if err := failed.replica.Close(); err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("close failed replica: %v", err)
			}
			failed.group, failed.replica = nil, nil
			c.start(failed)
			c.converged(end)
		})
	}
}

// TestGroupFollowerStorageFailure: a follower whose disk fails leaves the
// group; the leader and the other follower, still a majority, go on.
func TestGroupFollowerStorageFailure(t *testing.T) {
	c := startCluster(&cluster{t: t, cfg: testConfig(), faults: true}, 3)
	var seq int32
	var end int64
	for range 5 {
		c.appendRetrying(batch(t, seq, 2))
		seq, end = seq+2, end+2
	}
	c.converged(end)
	leader := c.leader()
	var follower *node
	for _, nd := range c.nodes {
		if nd != leader {
			follower = nd
			break
		}
	}
	follower.fs.Inject(log.Fault{Ops: log.FaultWrite | log.FaultSync, Err: syscall.EIO})
	for range 10 {
		c.appendRetrying(batch(t, seq, 2))
		seq, end = seq+2, end+2
	}
	waitState(t, follower.group, raft.Shutdown)
	if err := follower.group.Failed(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("follower Failed() = %v, want EIO", err)
	}
	if l := c.leader(); l != leader {
		t.Fatalf("leadership moved from %s to %s when a follower failed", leader.id, l.id)
	}
	// Closing may report the failure again; the cluster's clean-up must
	// not take that for an error.
	follower.fs.Clear()
	_ = follower.group.Close()
	_ = follower.replica.Close()
	follower.group, follower.replica = nil, nil
}

// waitState polls, up to 15s, until g's Raft is in state s: a shutdown
// fires no observation to wait on.
func waitState(t *testing.T, g *Group, s raft.RaftState) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for g.raft.State() != s {
		if time.Now().After(deadline) {
			t.Fatalf("raft state %v, want %v", g.raft.State(), s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGroupAdmitRefusesAppends: while Options.Admit says no, appends are
// refused with its error before anything reaches Raft; once it says yes
// they go on at the offsets they would have had.
func TestGroupAdmitRefusesAppends(t *testing.T) {
	var refuse atomic.Bool
	low := fmt.Errorf("disk has 10 bytes free, below storage.min.free.bytes 100: %w", kerr.KafkaStorageError)
	c := startCluster(&cluster{t: t, cfg: testConfig(), admit: func() error {
		if refuse.Load() {
			return low
		}
		return nil
	}}, 1)
	c.appendRetrying(batch(t, 0, 2))
	refuse.Store(true)
	l := c.leader()
	if _, err := l.group.Append(context.Background(), batch(t, 2, 2)); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("append below the free-space threshold: %v, want KAFKA_STORAGE_ERROR", err)
	}
	if o := l.replica.Offsets(); o.LogEnd != 2 {
		t.Fatalf("log end %d after a refused append, want 2", o.LogEnd)
	}
	refuse.Store(false)
	if res := c.appendRetrying(batch(t, 2, 2)); res.BaseOffset != 2 {
		t.Fatalf("append once admitted: %+v, want base offset 2", res)
	}
}
