package meta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
)

// testTimeout bounds each group test; 2 shared cores make elections slow.
const testTimeout = 60 * time.Second

func member(id int32) Member {
	return Member{ID: id, RaftAddress: fmt.Sprintf("node-%d", id), Host: "127.0.0.1", Port: 9090 + id}
}

func members(ids ...int32) []Member {
	var ms []Member
	for _, id := range ids {
		ms = append(ms, member(id))
	}
	return ms
}

// testConfig returns a config with short Raft timeouts.
func testConfig(self Member, initial []Member) Config {
	cfg := DefaultConfig()
	cfg.Self = self
	cfg.InitialMembers = initial
	// Short enough for quick elections, long enough that a leader starved
	// of CPU by parallel tests on 2 cores rarely steps down.
	cfg.HeartbeatTimeout = 200 * time.Millisecond
	cfg.ElectionTimeout = 200 * time.Millisecond
	cfg.LeaderLeaseTimeout = 200 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.ProposeTimeout = 10 * time.Second
	cfg.TrailingLogs = 4
	return cfg
}

// testNode is one node of a testCluster.
type testNode struct {
	id    int32
	dir   string
	cfg   Config
	trans *raft.InmemTransport
	g     *Group // nil while stopped
}

// testCluster is nodes on in-memory transports, all connected.
type testCluster struct {
	t     *testing.T
	nodes map[int32]*testNode
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	c := &testCluster{t: t, nodes: map[int32]*testNode{}}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n.g != nil {
				c.stop(n.id)
			}
		}
	})
	return c
}

// formCluster starts nodes ids, each with all of them as initial members.
func formCluster(t *testing.T, ids ...int32) *testCluster {
	t.Helper()
	c := newTestCluster(t)
	for _, id := range ids {
		c.start(testConfig(member(id), members(ids...)), Options{})
	}
	return c
}

// start opens a node's group with cfg (reusing its data dir if the node
// ran before) and connects its transport with every running node.
func (c *testCluster) start(cfg Config, opts Options) *testNode {
	c.t.Helper()
	n, ok := c.nodes[cfg.Self.ID]
	if !ok {
		n = &testNode{id: cfg.Self.ID, dir: c.t.TempDir()}
		c.nodes[n.id] = n
	}
	n.cfg = cfg
	_, n.trans = raft.NewInmemTransport(raft.ServerAddress(cfg.Self.RaftAddress))
	for _, o := range c.nodes {
		if o != n && o.g != nil {
			n.trans.Connect(o.trans.LocalAddr(), o.trans)
			o.trans.Connect(n.trans.LocalAddr(), n.trans)
		}
	}
	opts.Transport = n.trans
	g, err := Open(n.dir, cfg, opts)
	if err != nil {
		c.t.Fatalf("open node %d: %v", n.id, err)
	}
	n.g = g
	return n
}

// stop closes a node's group and cuts its links.
func (c *testCluster) stop(id int32) {
	c.t.Helper()
	n := c.nodes[id]
	if err := n.g.Close(); err != nil {
		c.t.Errorf("close node %d: %v", id, err)
	}
	n.g = nil
	for _, o := range c.nodes {
		if o != n && o.trans != nil {
			o.trans.Disconnect(n.trans.LocalAddr())
		}
	}
	n.trans.Close()
}

func (c *testCluster) running() []*testNode {
	var ns []*testNode
	for _, n := range c.nodes {
		if n.g != nil {
			ns = append(ns, n)
		}
	}
	slices.SortFunc(ns, func(a, b *testNode) int { return int(a.id - b.id) })
	return ns
}

// leader waits until a running node is the metadata leader, waking on
// the nodes' leader changes, never by polling a clock.
func (c *testCluster) leader(ctx context.Context) *testNode {
	c.t.Helper()
	var gs []*Group
	for _, n := range c.running() {
		gs = append(gs, n.g)
	}
	return c.nodes[leaderOf(ctx, c.t, gs).NodeID()]
}

// leaderOf waits until one of gs is the metadata leader, waking on their
// leader changes, never by polling a clock.
func leaderOf(ctx context.Context, t *testing.T, gs []*Group) *Group {
	t.Helper()
	for {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}}
		for _, g := range gs {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(g.LeaderChanged())})
		}
		for _, g := range gs {
			if g.IsLeader() {
				return g
			}
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			t.Fatalf("no metadata leader: %v", ctx.Err())
		}
	}
}

// propose proposes cmd on the leader, following leadership changes. A
// proposal whose outcome is uncertain is retried too: the test commands
// are idempotent or their callers tolerate "already done".
func (c *testCluster) propose(ctx context.Context, cmd Command) (Result, error) {
	c.t.Helper()
	var res Result
	err := c.onLeader(ctx, func(g *Group) error {
		var err error
		res, err = g.Propose(ctx, cmd)
		return err
	})
	return res, err
}

// onLeader runs op on the leader until it returns anything but a
// *NotLeaderError, as a forwarding caller would.
func (c *testCluster) onLeader(ctx context.Context, op func(*Group) error) error {
	c.t.Helper()
	for {
		err := op(c.leader(ctx).g)
		var nl *NotLeaderError
		if errors.As(err, &nl) && ctx.Err() == nil {
			c.t.Logf("retrying on the leader: %v", err)
			continue
		}
		return err
	}
}

// mustPropose proposes cmd and fails the test on any error.
func (c *testCluster) mustPropose(ctx context.Context, cmd Command) Result {
	c.t.Helper()
	res, err := c.propose(ctx, cmd)
	if err != nil {
		c.t.Fatalf("propose %s: %v", cmd.op(), err)
	}
	return res
}

// waitState waits until g's state satisfies ok.
func waitState(ctx context.Context, t *testing.T, g *Group, what string, ok func(*State) bool) *State {
	t.Helper()
	for {
		ch := g.Changed()
		if s := g.State(); ok(s) {
			return s
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("node %d: waiting for %s: %v (state %+v)", g.NodeID(), what, ctx.Err(), g.State())
		}
	}
}

// converge waits until every running node applied version and checks that
// they all hold the same state; it returns that state's snapshot.
func (c *testCluster) converge(ctx context.Context, version uint64) []byte {
	c.t.Helper()
	var want []byte
	for _, n := range c.running() {
		s, err := n.g.WaitVersion(ctx, version)
		if err != nil {
			c.t.Fatalf("node %d: %v", n.id, err)
		}
		// Pin the version: a node may already be past it.
		if s.Version != version {
			c.t.Fatalf("node %d is at version %d, past %d: something proposed behind the test's back", n.id, s.Version, version)
		}
		b := mustSnapshot(c.t, s)
		if want == nil {
			want = b
		} else if !bytes.Equal(b, want) {
			c.t.Fatalf("node %d differs:\n%s\nwant\n%s", n.id, b, want)
		}
	}
	return want
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// createTopic places and creates a topic on the state the leader has.
func (c *testCluster) createTopic(ctx context.Context, name string, partitions int32, rf int16) Result {
	c.t.Helper()
	l := c.leader(ctx)
	s := waitState(ctx, c.t, l.g, "initialised", (*State).Initialized)
	as, err := s.Place(partitions, rf)
	if err != nil {
		c.t.Fatal(err)
	}
	var id TopicID
	copy(id[:], name)
	id[15] = 1
	res, err := c.propose(ctx, &CreateTopic{Name: name, ID: id, Assignment: as})
	if errors.Is(err, kerr.TopicAlreadyExists) {
		// An uncertain first attempt that did commit: the id tells.
		s := waitState(ctx, c.t, c.leader(ctx).g, "topic "+name, func(s *State) bool { _, ok := s.Topic(name); return ok })
		if t, _ := s.Topic(name); t.ID == id {
			return Result{Version: s.Version}
		}
	}
	if err != nil {
		c.t.Fatalf("create topic %s: %v", name, err)
	}
	return res
}

func TestGroupFormsAndApplies(t *testing.T) {
	ctx := testContext(t)
	c := formCluster(t, 1, 2, 3)
	for _, n := range c.running() {
		s := waitState(ctx, t, n.g, "initialised", (*State).Initialized)
		if !reflect.DeepEqual(s.NodeIDs(true), []int32{1, 2, 3}) {
			t.Fatalf("node %d sees nodes %v", n.id, s.NodeIDs(true))
		}
	}
	clusterID := c.leader(ctx).g.State().ClusterID

	c.createTopic(ctx, "orders", 6, 3)
	if _, err := c.propose(ctx, &CreateTopic{Name: "orders", ID: TopicID{9}, Assignment: [][]int32{{1}}}); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	c.mustPropose(ctx, &AlterTopicConfigs{Topic: "orders", Configs: map[string]string{"retention.ms": "60000"}})
	a := c.mustPropose(ctx, &AllocateProducerIDBlock{NodeID: 2, Size: 1000})
	b := c.mustPropose(ctx, &AllocateProducerIDBlock{NodeID: 3, Size: 1000})
	if a.ProducerIDs.First+a.ProducerIDs.Size > b.ProducerIDs.First {
		t.Fatalf("producer id blocks overlap: %+v %+v", a.ProducerIDs, b.ProducerIDs)
	}
	last := c.mustPropose(ctx, &AlterBrokerConfigs{NodeID: DefaultBrokerNode, Configs: map[string]string{"log.retention.ms": "1000"}})
	c.converge(ctx, last.Version)

	// A follower refuses and names the leader, for the caller to forward.
	leader := c.leader(ctx)
	for _, n := range c.running() {
		if n == leader {
			continue
		}
		_, err := n.g.Propose(ctx, &DeleteTopic{Name: "orders"})
		var nl *NotLeaderError
		if !errors.As(err, &nl) || !errors.Is(err, kerr.NotController) {
			t.Fatalf("propose on follower %d: %v", n.id, err)
		}
		if nl.LeaderID != -1 && nl.LeaderID != leader.id {
			t.Fatalf("follower %d names leader %d, the leader is %d", n.id, nl.LeaderID, leader.id)
		}
		if got := n.g.ClusterID(); got != clusterID && got != "" {
			t.Fatalf("node %d remembers cluster %q, want %q", n.id, got, clusterID)
		}
	}

	// Closing the leader hands leadership over; the others go on.
	c.stop(leader.id)
	res := c.mustPropose(ctx, &DeleteTopic{Name: "orders"})
	c.converge(ctx, res.Version)
	if _, ok := c.leader(ctx).g.State().Topic("orders"); ok {
		t.Fatal("orders survived its deletion")
	}
}

func TestGroupRestartKeepsState(t *testing.T) {
	ctx := testContext(t)
	c := formCluster(t, 1, 2, 3)
	for i := range 6 {
		c.createTopic(ctx, fmt.Sprint("t", i), 3, 2)
	}
	mid := c.mustPropose(ctx, &AllocateProducerIDBlock{NodeID: 1, Size: 1000})
	c.converge(ctx, mid.Version)
	// Snapshot so that restart restores a snapshot and replays the log
	// after it (TrailingLogs is 4, so the log is compacted too).
	for _, n := range c.running() {
		if err := n.g.Snapshot(); err != nil {
			t.Fatalf("snapshot node %d: %v", n.id, err)
		}
	}
	c.mustPropose(ctx, &DeleteTopic{Name: "t0"})
	last := c.mustPropose(ctx, &AlterTopicConfigs{Topic: "t1", Configs: map[string]string{"cleanup.policy": "compact"}})
	want := c.converge(ctx, last.Version)
	clusterID := c.leader(ctx).g.State().ClusterID

	for _, n := range c.running() {
		c.stop(n.id)
	}
	for _, id := range []int32{1, 2, 3} {
		n := c.start(c.nodes[id].cfg, Options{})
		if n.g.ClusterID() != clusterID {
			t.Fatalf("node %d reopened with cluster id %q, want %q", id, n.g.ClusterID(), clusterID)
		}
	}
	if got := c.converge(ctx, last.Version); !bytes.Equal(got, want) {
		t.Fatalf("state after restart:\n%s\nwant\n%s", got, want)
	}
	next := c.mustPropose(ctx, &AllocateProducerIDBlock{NodeID: 1, Size: 1000})
	// Equal unless a proposal was retried after an uncertain outcome,
	// which may skip a block but never reuse one.
	if next.ProducerIDs.First < mid.ProducerIDs.First+1000 {
		t.Fatalf("producer ids after restart start at %d, reusing the block at %d", next.ProducerIDs.First, mid.ProducerIDs.First)
	}
}

func TestGroupJoinAndLeave(t *testing.T) {
	ctx := testContext(t)
	c := formCluster(t, 1, 2, 3)
	waitState(ctx, t, c.leader(ctx).g, "initialised", (*State).Initialized)

	joiner := c.start(testConfig(member(4), nil), Options{})
	if joiner.g.ClusterID() != "" {
		t.Fatalf("fresh node has cluster id %q", joiner.g.ClusterID())
	}
	if err := c.onLeader(ctx, func(g *Group) error {
		return g.Join(ctx, JoinRequest{ClusterID: joiner.g.ClusterID(), Node: member(4)})
	}); err != nil {
		t.Fatal(err)
	}
	// Joining again is a harmless retry.
	if err := c.onLeader(ctx, func(g *Group) error { return g.Join(ctx, JoinRequest{Node: member(4)}) }); err != nil {
		t.Fatalf("second join: %v", err)
	}
	res := c.mustPropose(ctx, &CreateTopic{Name: "on4", ID: TopicID{4}, Assignment: [][]int32{{4, 1}}})
	c.converge(ctx, res.Version)
	if voters, err := c.leader(ctx).g.Voters(); err != nil || !reflect.DeepEqual(sorted(voters), []int32{1, 2, 3, 4}) {
		t.Fatalf("voters %v, %v", voters, err)
	}

	if err := c.onLeader(ctx, func(g *Group) error { return g.Leave(ctx, 4) }); err != nil {
		t.Fatal(err)
	}
	if err := c.onLeader(ctx, func(g *Group) error { return g.Remove(ctx, 4) }); !errors.Is(err, kerr.ReassignmentInProgress) {
		t.Fatalf("remove of a node holding replicas: %v", err)
	}
	c.mustPropose(ctx, &ReassignPartition{Topic: "on4", Partition: 0, Replicas: []int32{2, 1}})
	if err := c.onLeader(ctx, func(g *Group) error { return g.Remove(ctx, 4) }); err != nil {
		t.Fatal(err)
	}
	c.stop(4)
	s := c.leader(ctx).g.State()
	if _, ok := s.Node(4); ok {
		t.Fatal("node 4 still registered")
	}
	if voters, err := c.leader(ctx).g.Voters(); err != nil || !reflect.DeepEqual(sorted(voters), []int32{1, 2, 3}) {
		t.Fatalf("voters after leave %v, %v", voters, err)
	}
	c.converge(ctx, c.mustPropose(ctx, &AlterTopicConfigs{Topic: "on4"}).Version)
}

func sorted(ids []int32) []int32 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func TestGroupRefusesStrangers(t *testing.T) {
	ctx := testContext(t)
	a := formCluster(t, 1, 2, 3)
	clusterA := waitState(ctx, t, a.leader(ctx).g, "initialised", (*State).Initialized).ClusterID

	// Cluster B: one node, initialised, then stopped.
	b := newTestCluster(t)
	bNode := b.start(testConfig(member(9), members(9)), Options{})
	clusterB := waitState(ctx, t, bNode.g, "initialised", (*State).Initialized).ClusterID
	b.stop(9)
	if clusterA == clusterB {
		t.Fatal("two clusters got the same id")
	}

	// Its data dir refuses to open as cluster A's.
	wrong := testConfig(member(9), nil)
	wrong.ClusterID = clusterA
	_, tr := raft.NewInmemTransport("node-9")
	if _, err := Open(bNode.dir, wrong, Options{Transport: tr}); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("open B's data dir as A's: %v", err)
	}

	// Reopened to join A, it says it belongs to B, and A refuses it.
	stranger := b.start(testConfig(member(9), nil), Options{})
	if stranger.g.ClusterID() != clusterB {
		t.Fatalf("B's node remembers cluster %q, want %q", stranger.g.ClusterID(), clusterB)
	}
	err := a.onLeader(ctx, func(g *Group) error {
		return g.Join(ctx, JoinRequest{ClusterID: stranger.g.ClusterID(), Node: member(9)})
	})
	if !errors.Is(err, kerr.InconsistentClusterID) {
		t.Fatalf("join from another cluster: %v", err)
	}
	t.Logf("refused: %v", err)

	// A duplicate node id is refused, and so is a taken Raft address.
	dup := member(2)
	dup.RaftAddress = "node-elsewhere"
	if err := a.onLeader(ctx, func(g *Group) error { return g.Join(ctx, JoinRequest{Node: dup}) }); !errors.Is(err, kerr.DuplicateBrokerRegistration) {
		t.Fatalf("join with a duplicate node id: %v", err)
	}
	taken := member(5)
	taken.RaftAddress = member(1).RaftAddress
	if err := a.onLeader(ctx, func(g *Group) error { return g.Join(ctx, JoinRequest{Node: taken}) }); !errors.Is(err, kerr.DuplicateBrokerRegistration) {
		t.Fatalf("join with a taken Raft address: %v", err)
	}
	if voters, err := a.leader(ctx).g.Voters(); err != nil || !reflect.DeepEqual(sorted(voters), []int32{1, 2, 3}) {
		t.Fatalf("voters after refusals %v, %v", voters, err)
	}
}

// TestGroupOverTCP forms a group over Raft's TCP transport on 127.0.0.1,
// as between processes, and applies a command on every node.
func TestGroupOverTCP(t *testing.T) {
	ctx := testContext(t)
	var transports []*raft.NetworkTransport
	var initial []Member
	for id := range int32(3) {
		tr, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 2, time.Second, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		transports = append(transports, tr)
		initial = append(initial, Member{ID: id, RaftAddress: string(tr.LocalAddr()), Host: "127.0.0.1", Port: 9092 + id})
	}
	var gs []*Group
	for i, m := range initial {
		g, err := Open(t.TempDir(), testConfig(m, initial), Options{Transport: transports[i]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := g.Close(); err != nil {
				t.Error(err)
			}
		})
		gs = append(gs, g)
	}
	var res Result
	for {
		l := leaderOf(ctx, t, gs)
		s := waitState(ctx, t, l, "initialised", (*State).Initialized)
		as, err := s.Place(4, 3)
		if err != nil {
			t.Fatal(err)
		}
		res, err = l.Propose(ctx, &CreateTopic{Name: "tcp", ID: TopicID{0x7c}, Assignment: as})
		var nl *NotLeaderError
		if errors.As(err, &nl) && !nl.Uncertain {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	for _, g := range gs {
		s, err := g.WaitVersion(ctx, res.Version)
		if err != nil {
			t.Fatal(err)
		}
		if tp, ok := s.Topic("tcp"); !ok || len(tp.Partitions) != 4 {
			t.Fatalf("node %d: topic %+v", g.NodeID(), tp)
		}
	}
}

// closeCounting is a transport that counts Close calls.
type closeCounting struct {
	raft.Transport
	closes int
}

func (c *closeCounting) Close() error {
	c.closes++
	return nil
}

// TestGroupClosesItsTransport checks that the group owns its transport:
// Close closes it, and so does a failed Open.
func TestGroupClosesItsTransport(t *testing.T) {
	ctx := testContext(t)
	_, inmem := raft.NewInmemTransport("node-1")
	tr := &closeCounting{Transport: inmem}
	g, err := Open(t.TempDir(), testConfig(member(1), members(1)), Options{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	waitState(ctx, t, g, "initialised", (*State).Initialized)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if tr.closes != 1 {
		t.Fatalf("transport closed %d times, want 1", tr.closes)
	}
	if _, err := g.Propose(ctx, &RemoveNode{NodeID: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Propose after Close: %v", err)
	}

	bad := &closeCounting{Transport: inmem}
	if _, err := Open(t.TempDir(), testConfig(member(1), members(2)), Options{Transport: bad}); err == nil || bad.closes != 1 {
		t.Fatalf("Open with a node missing from its initial members: %v, transport closed %d times", err, bad.closes)
	}
}

// TestOpenLockedDataDir checks that a data dir served twice is refused
// with a message rather than waited on forever.
func TestOpenLockedDataDir(t *testing.T) {
	defer func(d time.Duration) { storeLockTimeout = d }(storeLockTimeout)
	storeLockTimeout = 100 * time.Millisecond
	c := formCluster(t, 1)
	n := c.nodes[1]
	_, trans := raft.NewInmemTransport("node-1-again")
	cfg := n.cfg
	_, err := Open(n.dir, cfg, Options{Transport: trans})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second Open of a data dir: %v, want a lock error", err)
	}
}

// unresolvedFuture is a Raft future no one resolves: what Raft leaves an
// Apply future whose committed entry was still queued for its FSM at
// Shutdown.
// Error says it is being waited on (entered), then blocks until never
// closes.
type unresolvedFuture struct{ entered, never chan struct{} }

func (f unresolvedFuture) Error() error {
	close(f.entered)
	<-f.never
	return nil
}

// TestCloseWithUnresolvedFuture: Close returns though a proposal waits on
// a future Raft never resolves, and that proposal's wait ends with
// ErrClosed.
func TestCloseWithUnresolvedFuture(t *testing.T) {
	ctx := testContext(t)
	c := formCluster(t, 1)
	n := c.running()[0]
	waitState(ctx, t, n.g, "initialised", (*State).Initialized)
	never := unresolvedFuture{entered: make(chan struct{}), never: make(chan struct{})}
	defer close(never.never) // lets the waiting goroutine end with the test
	waited := make(chan error, 1)
	go func() { waited <- n.g.await(context.Background(), never) }()
	select { // the proposal waits on its future before Close begins
	case <-never.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the proposal never waited on its future")
	}
	closed := make(chan error, 1)
	go func() { closed <- n.g.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waiting 10s later for a proposal whose future Raft never resolves")
	}
	select {
	case err := <-waited:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("the waiting proposal: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting proposal did not end 10s after Close")
	}
	n.g = nil // closed here; the cleanup must not close it again
	n.trans.Close()
}
