package raftlog

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/sluice-io/sluice/log"
)

// batchFSM records the base offset of every applied batch entry.
type batchFSM struct {
	mu      sync.Mutex
	applied map[uint64]int64
	notify  chan struct{}
}

func newBatchFSM() *batchFSM {
	return &batchFSM{applied: map[uint64]int64{}, notify: make(chan struct{}, 1)}
}

func (f *batchFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, err := log.ParseBatchHeader(l.Data)
	if err != nil {
		return err
	}
	f.applied[l.Index] = h.BaseOffset
	select {
	case f.notify <- struct{}{}:
	default:
	}
	return h.BaseOffset
}

// appliedThrough reports whether the FSM has applied index.
func (f *batchFSM) appliedThrough(index uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.applied[index]
	return ok
}

func (f *batchFSM) Snapshot() (raft.FSMSnapshot, error) { return noSnapshot{}, nil }
func (f *batchFSM) Restore(r io.ReadCloser) error       { return r.Close() }

type noSnapshot struct{}

func (noSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (noSnapshot) Release()                             {}

// raftNode is one replica of a test partition group.
type raftNode struct {
	id    raft.ServerID
	dir   string
	trans *raft.InmemTransport
	snaps raft.SnapshotStore
	segs  *log.Log
	store *Store
	fsm   *batchFSM
	raft  *raft.Raft
	// observations receives this node's leader changes.
	observations chan raft.Observation
}

func (n *raftNode) start(t *testing.T, bootstrap *raft.Configuration) {
	t.Helper()
	n.segs = openLog(t, log.OSFS{}, n.dir)
	s, err := Open(n.dir, n.segs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.store = s
	cache, err := raft.NewLogCache(128, s)
	if err != nil {
		t.Fatal(err)
	}
	n.fsm = newBatchFSM()
	cfg := raft.DefaultConfig()
	cfg.LocalID = n.id
	cfg.HeartbeatTimeout = 300 * time.Millisecond
	cfg.ElectionTimeout = 300 * time.Millisecond
	cfg.LeaderLeaseTimeout = 200 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.SnapshotThreshold = math.MaxUint32
	cfg.Logger = hclog.NewNullLogger()
	stable := raft.NewInmemStore() // term and vote; the store under test holds the log
	if bootstrap != nil {
		if err := raft.BootstrapCluster(cfg, cache, stable, n.snaps, n.trans, *bootstrap); err != nil {
			t.Fatal(err)
		}
	}
	r, err := raft.NewRaft(cfg, n.fsm, cache, stable, n.snaps, n.trans)
	if err != nil {
		t.Fatal(err)
	}
	r.RegisterObserver(raft.NewObserver(n.observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	n.raft = r
}

func (n *raftNode) stop(t *testing.T) {
	t.Helper()
	if err := n.raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	closeStore(t, n.store, n.segs)
}

// waitFor waits until cond holds, re-checking it each time changed
// signals, for at most 10 seconds.
func waitFor(t *testing.T, what string, changed <-chan struct{}, cond func() bool) {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for !cond() {
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestRaftGroupOnSegments runs a real three-replica Raft group whose log
// store is the segment log: every replica ends with byte-identical
// segments, Raft's own entries never enter them, and a replica restarted
// from disk catches up.
func TestRaftGroupOnSegments(t *testing.T) {
	nodes := make([]*raftNode, 3)
	var servers []raft.Server
	leaderChanges := make(chan raft.Observation, 64)
	changed := make(chan struct{}, 1)
	go func() {
		for range leaderChanges {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}()
	defer close(leaderChanges)
	for i := range nodes {
		addr, trans := raft.NewInmemTransport("")
		nodes[i] = &raftNode{id: raft.ServerID(fmt.Sprint(i)), dir: t.TempDir(), trans: trans, snaps: raft.NewInmemSnapshotStore(), observations: leaderChanges}
		servers = append(servers, raft.Server{ID: nodes[i].id, Address: addr})
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
	config := raft.Configuration{Servers: servers}
	for _, n := range nodes {
		n.start(t, &config)
	}
	defer func() {
		for _, n := range nodes {
			if n.raft != nil {
				n.stop(t)
			}
		}
	}()

	leader := func() *raftNode {
		var l *raftNode
		waitFor(t, "a leader", changed, func() bool {
			for _, n := range nodes {
				if n.raft != nil && n.raft.State() == raft.Leader {
					l = n
					return true
				}
			}
			return false
		})
		return l
	}
	// apply commits batches from..to-1, each at least once (a batch whose
	// leader was lost on a loaded machine is applied again), and returns
	// the index of the last.
	apply := func(from, to int) uint64 {
		var last uint64
		for i := from; i < to; i++ {
			for attempt := 0; ; attempt++ {
				f := leader().raft.Apply(testBatch(1+i%4, fmt.Sprintf("v%d", i)), 5*time.Second)
				err := f.Error()
				if err == nil {
					last = f.Index()
					break
				}
				if attempt == 20 || (err != raft.ErrLeadershipLost && err != raft.ErrNotLeader && err != raft.ErrEnqueueTimeout) {
					t.Fatalf("apply batch %d: %v", i, err)
				}
			}
		}
		return last
	}
	waitApplied := func(n *raftNode, index uint64) {
		waitFor(t, fmt.Sprintf("replica %s to apply index %d", n.id, index), n.fsm.notify, func() bool { return n.fsm.appliedThrough(index) })
	}

	last := apply(0, 200)
	for _, n := range nodes {
		waitApplied(n, last)
	}
	sameSegments(t, nodes)

	// A follower down while the others go on, then back from disk.
	var down *raftNode
	for _, n := range nodes {
		if n != leader() {
			down = n
			break
		}
	}
	down.stop(t)
	down.raft = nil
	last = apply(200, 300)
	down.start(t, nil)
	for _, n := range nodes {
		waitApplied(n, last)
	}
	sameSegments(t, nodes)

	// Leadership moves: the new leader's batches carry its term as epoch.
	if err := leader().raft.LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	last = apply(300, 320)
	var entry raft.Log
	if err := leader().store.GetLog(last, &entry); err != nil {
		t.Fatal(err)
	}
	h, err := log.ParseBatchHeader(entry.Data)
	if err != nil {
		t.Fatal(err)
	}
	if entry.Term < 2 || h.PartitionLeaderEpoch != int32(entry.Term) {
		t.Fatalf("last batch: term %d, epoch %d, after a leadership transfer", entry.Term, h.PartitionLeaderEpoch)
	}
}

// sameSegments checks that every replica's segment log holds the same
// bytes.
func sameSegments(t *testing.T, nodes []*raftNode) {
	t.Helper()
	var want []byte
	for i, n := range nodes {
		got, err := n.segs.Read(nil, log.ReadRequest{Offset: 0, MaxOffset: math.MaxInt64, MaxBytes: math.MaxInt32})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = got
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("replica %d holds %d bytes of batches, replica 0 %d: not identical", i, len(got), len(want))
		}
	}
	if len(want) == 0 {
		t.Fatal("no batches in the segment logs")
	}
}
