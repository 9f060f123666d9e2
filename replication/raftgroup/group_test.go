package raftgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication/transport"
)

// testConfig has short timeouts that still hold on a loaded 2-core
// machine.
func testConfig() Config {
	c := DefaultConfig()
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 200 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

// node is one replica of the test partition.
type node struct {
	id      raft.ServerID
	addr    raft.ServerAddress
	dir     string
	trans   *raft.InmemTransport
	mux     *transport.Mux // the node's Raft transport when the cluster uses TCP
	fs      *log.FaultFS   // the node's disk when the cluster injects faults
	replica *partition.Replica
	group   *Group
}

type cluster struct {
	t     testing.TB
	cfg   Config
	nodes []*node
	tcp   bool // over replication/transport on 127.0.0.1, not in memory
	// faults gives each node a FaultFS over the OS.
	faults bool
	// admit is every group's Options.Admit.
	admit func() error
	// partitionConfig, if set, replaces partition.DefaultConfig() for
	// replicas started from then on.
	partitionConfig *partition.Config
	// muxEdit, if set, edits every node's transport config (over TCP).
	muxEdit func(*transport.Config)
}

func newCluster(t *testing.T, n int) *cluster { return newClusterWith(t, n, testConfig()) }

func newClusterWith(t *testing.T, n int, cfg Config) *cluster { return newClusterTB(t, n, cfg) }

func newClusterTB(t testing.TB, n int, cfg Config) *cluster { return newClusterOf(t, n, cfg, false) }

func newClusterOf(t testing.TB, n int, cfg Config, tcp bool) *cluster {
	return newClusterMux(t, n, cfg, tcp, nil)
}

// newClusterMux is newClusterOf with edit applied to every node's
// transport config (over TCP).
func newClusterMux(t testing.TB, n int, cfg Config, tcp bool, edit func(*transport.Config)) *cluster {
	return startCluster(&cluster{t: t, cfg: cfg, tcp: tcp, muxEdit: edit}, n)
}

// startCluster creates, starts and bootstraps n nodes of c.
func startCluster(c *cluster, n int) *cluster {
	t := c.t
	var servers []raft.Server
	for i := range n {
		nd := &node{id: raft.ServerID(fmt.Sprint(i + 1)), addr: raft.ServerAddress(fmt.Sprintf("node-%d", i+1)), dir: t.TempDir()}
		if c.faults {
			nd.fs = log.NewFaultFS(nil)
		}
		if c.tcp {
			nd.mux, nd.addr = newMux(t, c.muxEdit)
		}
		c.nodes = append(c.nodes, nd)
		servers = append(servers, raft.Server{ID: nd.id, Address: nd.addr})
	}
	for _, nd := range c.nodes {
		c.start(nd)
		if err := nd.group.Bootstrap(servers); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.stop(nd)
		}
	})
	return c
}

// newMux starts a node's Raft transport on 127.0.0.1.
func newMux(t testing.TB, edit func(*transport.Config)) (*transport.Mux, raft.ServerAddress) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := transport.DefaultConfig()
	cfg.Advertise = raft.ServerAddress(l.Addr().String())
	if edit != nil {
		edit(&cfg)
	}
	m, err := transport.New(cfg, transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = m.Serve(l)
	}()
	t.Cleanup(func() {
		_ = m.Close()
		<-served
	})
	return m, cfg.Advertise
}

// start opens nd's replica and group and connects its transport.
func (c *cluster) start(nd *node) {
	c.t.Helper()
	var trans raft.Transport
	if c.tcp {
		mt, err := nd.mux.Transport("t-0")
		if err != nil {
			c.t.Fatal(err)
		}
		trans = mt
	} else {
		_, nd.trans = raft.NewInmemTransport(nd.addr)
		for _, other := range c.nodes {
			if other != nd && other.trans != nil && other.group != nil {
				nd.trans.Connect(other.addr, other.trans)
				other.trans.Connect(nd.addr, nd.trans)
			}
		}
		trans = nd.trans
	}
	var fs log.FS
	if nd.fs != nil {
		fs = nd.fs
	}
	pcfg := partition.DefaultConfig()
	if c.partitionConfig != nil {
		pcfg = *c.partitionConfig
	}
	r, err := partition.Open(nd.dir, "t", 0, pcfg, partition.Options{ExternalHighWatermark: true, FS: fs})
	if err != nil {
		c.t.Fatal(err)
	}
	nd.replica = r
	g, err := Open(nd.dir, r, c.cfg, Options{ID: nd.id, Transport: trans, FS: fs, Admit: c.admit})
	if err != nil {
		c.t.Fatal(err)
	}
	nd.group = g
}

// stop closes nd's group and replica, as a clean shutdown does.
func (c *cluster) stop(nd *node) {
	c.t.Helper()
	if nd.group == nil {
		return
	}
	if err := nd.group.Close(); err != nil {
		c.t.Errorf("close group %s: %v", nd.id, err)
	}
	if err := nd.replica.Close(); err != nil {
		c.t.Errorf("close replica %s: %v", nd.id, err)
	}
	nd.group, nd.replica = nil, nil
}

// waitFor waits, up to 15s, until cond holds, re-checking whenever a
// group's leadership changes or a replica's high watermark moves.
func (c *cluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	timeout := time.After(15 * time.Second)
	for !cond() {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timeout)}}
		var waiters []*partition.Waiter
		for _, nd := range c.nodes {
			if nd.group == nil {
				continue
			}
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(nd.group.Changed())})
			w := partition.NewWaiter()
			nd.replica.Watch(w)
			waiters = append(waiters, w)
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w.C)})
		}
		if cond() { // re-check after arming the signals
			break
		}
		chosen, _, _ := reflect.Select(cases)
		for i, nd := range c.liveNodes() {
			nd.replica.Unwatch(waiters[i])
		}
		if chosen == 0 {
			c.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (c *cluster) liveNodes() []*node {
	var live []*node
	for _, nd := range c.nodes {
		if nd.group != nil {
			live = append(live, nd)
		}
	}
	return live
}

func (c *cluster) leader() *node {
	c.t.Helper()
	var l *node
	c.waitFor("a leader", func() bool {
		for _, nd := range c.liveNodes() {
			if nd.group.IsLeader() {
				l = nd
				return true
			}
		}
		return false
	})
	return l
}

// batch builds an idempotent batch of n records of producer 7 from seq.
func batch(t *testing.T, seq int32, n int) []byte {
	t.Helper()
	b := record.Builder{Producer: &record.Producer{ID: 7, Epoch: 0, BaseSequence: seq}}
	for i := range n {
		b.Add(1_700_000_000_000, nil, []byte(fmt.Sprintf("v%d", int(seq)+i)))
	}
	out, err := b.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// appendRetrying appends b to whichever node leads, retrying on
// NOT_LEADER as a client does.
func (c *cluster) appendRetrying(b []byte) partition.AppendResult {
	c.t.Helper()
	for attempt := 0; ; attempt++ {
		res, err := c.leader().group.Append(context.Background(), b)
		if err == nil {
			return res
		}
		if attempt == 20 || err != kerr.NotLeaderForPartition {
			c.t.Fatalf("append: %v", err)
		}
	}
}

// log returns the bytes of every batch below nd's high watermark.
func (nd *node) log(t testing.TB) []byte {
	t.Helper()
	res, err := nd.replica.Read(nil, partition.ReadRequest{Offset: 0, MaxBytes: math.MaxInt32})
	if err != nil {
		t.Fatal(err)
	}
	return res.Records
}

func (c *cluster) converged(end int64) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("every replica committed up to %d", end), func() bool {
		for _, nd := range c.liveNodes() {
			if nd.replica.Offsets().HighWatermark != end {
				return false
			}
		}
		return true
	})
	want := c.liveNodes()[0].log(c.t)
	for _, nd := range c.liveNodes()[1:] {
		if got := nd.log(c.t); !bytes.Equal(got, want) {
			c.t.Fatalf("replica %s holds %d bytes below the high watermark, replica %s %d: not identical", nd.id, len(got), c.liveNodes()[0].id, len(want))
		}
	}
}

// TestGroupReplicatesAndFailsOver: appends commit on every replica with
// the same bytes at the same offsets; a retry is answered with the
// original offsets, also after the leader changed; a replica down while
// the others went on catches up from the Raft log when it returns.
func TestGroupReplicatesAndFailsOver(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		name := "in-memory"
		if tcp {
			name = "tcp"
		}
		t.Run(name, func(t *testing.T) { testReplicatesAndFailsOver(t, newClusterOf(t, 3, testConfig(), tcp)) })
	}
}

func testReplicatesAndFailsOver(t *testing.T, c *cluster) {
	var seq int32
	var end int64
	for range 30 {
		res := c.appendRetrying(batch(t, seq, 3))
		if res.BaseOffset != end || res.LastOffset != end+2 || res.Duplicate {
			t.Fatalf("append at %d: %+v", end, res)
		}
		seq += 3
		end += 3
	}
	c.converged(end)

	// A retry of the last batch: the original offsets, nothing written.
	last := batch(t, seq-3, 3)
	if res := c.appendRetrying(last); !res.Duplicate || res.BaseOffset != end-3 {
		t.Fatalf("retry: %+v, want a duplicate at %d", res, end-3)
	}

	// The leader goes away; the new one serves, and knows the producer.
	old := c.leader()
	oldEpoch := old.group.LeaderEpoch()
	c.stop(old)
	if res := c.appendRetrying(last); !res.Duplicate || res.BaseOffset != end-3 {
		t.Fatalf("retry on the new leader: %+v, want a duplicate at %d", res, end-3)
	}
	for range 10 {
		c.appendRetrying(batch(t, seq, 2))
		seq += 2
		end += 2
	}
	if l := c.leader(); l.group.LeaderEpoch() <= oldEpoch {
		t.Fatalf("new leader's epoch %d, old %d", l.group.LeaderEpoch(), oldEpoch)
	}
	c.converged(end)

	// The old leader returns and catches up.
	c.start(old)
	c.converged(end)
	if o := old.replica.Offsets(); o.LogEnd != end {
		t.Fatalf("returned replica's offsets %+v, want log end %d", o, end)
	}
	// The epochs in its log are the terms: OffsetForLeaderEpoch works.
	if epoch, endOffset, err := old.replica.EpochEndOffset(oldEpoch); err != nil || epoch != oldEpoch || endOffset < 30*3 {
		t.Fatalf("EpochEndOffset(%d) = %d, %d, %v", oldEpoch, epoch, endOffset, err)
	}
}

// TestGroupNotLeader: a follower refuses appends at once.
func TestGroupNotLeader(t *testing.T) {
	c := newCluster(t, 3)
	l := c.leader()
	for _, nd := range c.nodes {
		if nd == l {
			continue
		}
		if _, err := nd.group.Append(context.Background(), batch(t, 0, 1)); err != kerr.NotLeaderForPartition {
			t.Fatalf("append on follower %s: %v, want NOT_LEADER_OR_FOLLOWER", nd.id, err)
		}
	}
}

// crash stops nd as kill -9 would: Raft stops without handing over
// leadership, and neither the store nor the replica is closed (nothing is
// synced or snapshotted on the way out).
func (c *cluster) crash(nd *node) {
	c.t.Helper()
	if err := nd.group.raft.Shutdown().Error(); err != nil {
		c.t.Fatal(err)
	}
	close(nd.group.stop)
	nd.group.done.Wait()
	nd.group, nd.replica = nil, nil
}

// TestGroupCrashAll: every replica crashes at once; after the restart
// every acknowledged record is there, once and in order.
func TestGroupCrashAll(t *testing.T) {
	c := newCluster(t, 3)
	var seq int32
	var end int64
	for range 40 {
		res := c.appendRetrying(batch(t, seq, 2))
		if res.BaseOffset != end {
			t.Fatalf("append at %d: %+v", end, res)
		}
		seq += 2
		end += 2
	}
	for _, nd := range c.nodes {
		c.crash(nd)
	}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.leader()
	c.converged(end)
	values := map[string]int{}
	it := c.nodes[0].log(t)
	err := log.SplitBatches(it, func(b []byte, h log.BatchHeader) error {
		_, recs, err := record.Records(b, record.MaxDecompressedBytes)
		if err != nil {
			return err
		}
		for recs.Next() {
			values[string(recs.Record().Value)]++
		}
		return recs.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range int(seq) {
		if n := values[fmt.Sprintf("v%d", i)]; n != 1 {
			t.Fatalf("record v%d present %d times after the crash", i, n)
		}
	}
	// The producer state survived too: a retry is still a duplicate.
	if res := c.appendRetrying(batch(t, seq-2, 2)); !res.Duplicate {
		t.Fatalf("retry after the crash: %+v, want a duplicate", res)
	}
}

// TestGroupSnapshotsAndRestart: with frequent snapshots the Raft window
// moves on while the data stays; a restarted replica replays only from
// its latest snapshot and ends where the others are.
func TestGroupSnapshotsAndRestart(t *testing.T) {
	cfg := testConfig()
	cfg.TrailingLogs = 5
	c := newClusterWith(t, 3, cfg)
	var seq int32
	var end int64
	for round := range 3 {
		for range 20 {
			c.appendRetrying(batch(t, seq, 1))
			seq++
			end++
		}
		c.converged(end)
		for _, nd := range c.liveNodes() {
			if err := nd.group.raft.Snapshot().Error(); err != nil {
				t.Fatalf("snapshot on %s in round %d: %v", nd.id, round, err)
			}
		}
	}
	for _, nd := range c.nodes {
		if first, _ := nd.group.store.FirstIndex(); first < 40 {
			t.Fatalf("replica %s: Raft log starts at %d after snapshots, want it compacted past 40", nd.id, first)
		}
	}
	// Restart one follower: replay starts at its snapshot.
	var follower *node
	for _, nd := range c.nodes {
		if !nd.group.IsLeader() {
			follower = nd
			break
		}
	}
	c.stop(follower)
	c.start(follower)
	if o := follower.replica.Offsets(); o.HighWatermark < 40 {
		t.Fatalf("restarted replica's high watermark %d: the snapshot should make at least 40 visible at once", o.HighWatermark)
	}
	for range 5 {
		c.appendRetrying(batch(t, seq, 1))
		seq++
		end++
	}
	c.converged(end)
}

// blockedFuture is a Raft future never resolved, as Raft may leave one
// at Shutdown.
type blockedFuture struct{ never chan struct{} }

func (f blockedFuture) Error() error { <-f.never; return nil }

// TestFutureErrorEndsWhenTheGroupStops: the group's wait on a future
// (watch's barrier after an election) ends when the group stops, so
// Close, which waits for watch, cannot hang on a future Raft left
// unresolved.
func TestFutureErrorEndsWhenTheGroupStops(t *testing.T) {
	g := &Group{stop: make(chan struct{})}
	f := blockedFuture{never: make(chan struct{})}
	defer close(f.never)
	got := make(chan error, 1)
	go func() { got <- g.futureError(f) }()
	close(g.stop)
	select {
	case err := <-got:
		if !errors.Is(err, raft.ErrRaftShutdown) {
			t.Fatalf("futureError = %v, want raft.ErrRaftShutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("futureError still waiting 10s after the group stopped")
	}
}
