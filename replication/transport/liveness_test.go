package transport

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// downRecorder installs a peer-down handler on a group of m and returns
// the channel it reports to.
func downRecorder(t *testing.T, m *Mux) <-chan raft.ServerAddress {
	t.Helper()
	tr := mustTransport(t, m, "watcher")
	ch := make(chan raft.ServerAddress, 16)
	tr.SetPeerDownHandler(func(addr raft.ServerAddress) {
		select {
		case ch <- addr:
		default:
		}
	})
	return ch
}

// waitDown waits up to within for the handler to report addr.
func waitDown(t *testing.T, ch <-chan raft.ServerAddress, addr raft.ServerAddress, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case got := <-ch:
			if got == addr {
				return time.Since(start)
			}
			t.Errorf("peer down %s, want only %s", got, addr)
		case <-timer.C:
			t.Fatalf("peer %s not declared down within %v", addr, within)
		}
	}
}

// TestPeerDownWhenRefused: a watched peer whose process is gone (its
// listener closed: dials are refused) is declared down within two of the
// detector's checks, before the silence timeout.
func TestPeerDownWhenRefused(t *testing.T) {
	const timeout = 2 * time.Second
	edit := func(c *Config, _ *Options) { c.PeerFailureTimeout = timeout }
	a := newTestMux(t, edit)
	b := newTestMux(t, edit)
	down := downRecorder(t, a.Mux)
	a.WatchPeer(b.Addr())
	waitFor(t, 5*time.Second, "a connected to b", func() bool {
		p, _ := a.peer(b.Addr())
		c := p.control.Load()
		return c != nil && c.alive()
	})
	if a.PeerDown(b.Addr()) {
		t.Fatalf("b down while it answers")
	}
	b.Close()
	took := waitDown(t, down, b.Addr(), 3*timeout)
	if !a.PeerDown(b.Addr()) {
		t.Fatalf("PeerDown(b) false after the handler ran")
	}
	t.Logf("declared down %v after its listener closed (silence timeout %v)", took, timeout)
	if took >= timeout {
		t.Errorf("a refused peer took %v to be declared down, want under the silence timeout %v", took, timeout)
	}
}

// watchedBehindProxy starts b, and a dialling b through a proxy, both
// with PeerFailureTimeout timeout; a watches b and is connected to it.
// down reports the peers a declares down.
func watchedBehindProxy(t *testing.T, timeout time.Duration) (a, b *testMux, px *proxy, down <-chan raft.ServerAddress) {
	t.Helper()
	b = newTestMux(t, func(c *Config, _ *Options) { c.PeerFailureTimeout = timeout })
	px = newProxy(t, string(b.Addr()))
	a = newTestMux(t, func(c *Config, o *Options) {
		c.PeerFailureTimeout = timeout
		o.DialAddress = func(raft.ServerAddress) string { return px.Addr() }
	})
	down = downRecorder(t, a.Mux)
	a.WatchPeer(b.Addr())
	waitFor(t, 5*time.Second, "a connected to b", func() bool {
		p, _ := a.peer(b.Addr())
		c := p.control.Load()
		return c != nil && c.alive() && !a.PeerDown(b.Addr())
	})
	return a, b, px, down
}

// TestPeerDownWhenRefusedBehindProxy: with a proxy on the link, a dial to
// a peer whose process is gone succeeds (the proxy accepts it) and the
// proxy then ends the connection, finding nothing behind it; that too
// declares the peer down within two of the detector's checks, well
// before the silence timeout.
func TestPeerDownWhenRefusedBehindProxy(t *testing.T) {
	const timeout = 2 * time.Second
	a, b, _, down := watchedBehindProxy(t, timeout)
	b.Close()
	took := waitDown(t, down, b.Addr(), 3*timeout)
	if !a.PeerDown(b.Addr()) {
		t.Fatalf("PeerDown(b) false after the handler ran")
	}
	t.Logf("declared down %v after its listener closed, behind a proxy (silence timeout %v)", took, timeout)
	// Two of the detector's checks (timeout/5 apart) at most; the silence
	// alone would take timeout less the time since the last frame read
	// (at most one check).
	if took >= timeout/2 {
		t.Errorf("a peer gone behind a proxy took %v to be declared down, want under %v (silence timeout %v)", took, timeout/2, timeout)
	}
}

// TestPeerDownWhenSilent: a peer behind a link that drops everything is
// declared down after PeerFailureTimeout of silence (within two checks
// more), and up again once the link carries frames again.
func TestPeerDownWhenSilent(t *testing.T) {
	const timeout = 500 * time.Millisecond
	a, b, px, down := watchedBehindProxy(t, timeout)
	px.blackHole.Store(true)
	cut := time.Now()
	took := waitDown(t, down, b.Addr(), 10*timeout)
	t.Logf("declared down %v after the link went silent (timeout %v)", took, timeout)
	// The last frame read may precede the cut by up to two checks (a
	// ping goes out at a check once nothing was read for one interval).
	if early := timeout - 2*timeout/5; took < early {
		t.Errorf("declared down %v after the link went silent, before %v", took, early)
	}
	px.blackHole.Store(false)
	// The silent connection's ping times out (Config.Timeout), the
	// detector re-dials, and the first answer brings the peer back.
	waitFor(t, 4*testConfig().Timeout, "b up again", func() bool { return !a.PeerDown(b.Addr()) })
	t.Logf("up again %v after the cut", time.Since(cut))
}

// TestPeerNotDownWhileAnswering: an idle peer that answers pings is never
// declared down, and neither is one the detector does not watch.
func TestPeerNotDownWhileAnswering(t *testing.T) {
	const timeout = 500 * time.Millisecond
	edit := func(c *Config, _ *Options) { c.PeerFailureTimeout = timeout }
	a := newTestMux(t, edit)
	b := newTestMux(t, edit)
	down := downRecorder(t, a.Mux)
	a.WatchPeer(b.Addr())
	a.WatchPeer(a.Addr()) // itself: ignored
	select {
	case addr := <-down:
		t.Fatalf("peer %s declared down while it answers", addr)
	case <-time.After(6 * timeout):
	}
	if a.PeerDown(b.Addr()) || a.PeerDown("127.0.0.1:1") {
		t.Fatalf("PeerDown true for an answering or an unwatched peer")
	}
	a.mu.RLock()
	_, self := a.peers[a.Addr()]
	a.mu.RUnlock()
	if self {
		t.Errorf("the Mux watches its own address")
	}
}

// TestPeerDetectorOff: with PeerFailureTimeout 0 nothing is watched and
// no goroutine runs for it.
func TestPeerDetectorOff(t *testing.T) {
	a := newTestMux(t, func(c *Config, _ *Options) { c.PeerFailureTimeout = 0 })
	a.WatchPeer("127.0.0.1:1")
	if n := a.running.Load(); n != 0 {
		t.Errorf("%d goroutines with the detector off and no connection, want 0", n)
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if len(a.peers) != 0 {
		t.Errorf("watching %d peers with the detector off", len(a.peers))
	}
}

// TestElectNow: ElectNow hands the group's raft a TimeoutNow it accepts
// (a header of a supported protocol version), behind what is queued,
// unless its check says no by then; it fails with ErrClosed once the
// group is closed.
func TestElectNow(t *testing.T) {
	a := newTestMux(t, nil)
	tr, err := a.Transport("g")
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.ElectNow(func() bool { return false }); err != nil {
		t.Fatalf("ElectNow: %v", err)
	}
	if err := tr.ElectNow(nil); err != nil {
		t.Fatalf("ElectNow: %v", err)
	}
	select {
	case rpc := <-tr.Consumer():
		req, ok := rpc.Command.(*raft.TimeoutNowRequest)
		if !ok {
			t.Fatalf("raft got %T, want a TimeoutNowRequest", rpc.Command)
		}
		if v := req.ProtocolVersion; v < raft.ProtocolVersionMin || v > raft.ProtocolVersionMax {
			t.Errorf("protocol version %d raft refuses", v)
		}
		rpc.Respond(&raft.TimeoutNowResponse{}, nil)
	case <-time.After(5 * time.Second):
		t.Fatal("no TimeoutNow reached raft")
	}
	select {
	case rpc := <-tr.Consumer():
		t.Fatalf("raft got %T after the only request left", rpc.Command)
	case <-time.After(100 * time.Millisecond):
	}
	tr.Close()
	if err := tr.ElectNow(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("ElectNow after Close: %v, want ErrClosed", err)
	}
}

// TestHeartbeatReuse: with a reuse window, a heartbeat right after a real
// one is answered from it without reaching the follower; one after the
// window, one of another term, and any once the follower's node is gone
// are sent for real (the last fails).
func TestHeartbeatReuse(t *testing.T) {
	const window = 300 * time.Millisecond
	edit := func(c *Config, _ *Options) { c.PeerFailureTimeout = 2 * time.Second }
	a := newTestMux(t, edit)
	b := newTestMux(t, edit)
	var mu sync.Mutex
	received := 0
	answer := func(rpc raft.RPC) {
		req := rpc.Command.(*raft.AppendEntriesRequest)
		mu.Lock()
		received++
		mu.Unlock()
		rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, Success: true, LastLog: 9}, nil)
	}
	tb := mustTransport(t, b.Mux, "g")
	tb.SetHeartbeatHandler(answer)
	serveRPCs(t, tb, answer)
	ta := mustTransport(t, a.Mux, "g")
	ta.SetHeartbeatReuse(window)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return received
	}
	beat := func(term uint64) (*raft.AppendEntriesResponse, error) {
		req := &raft.AppendEntriesRequest{RPCHeader: header("leader"), Term: term, Leader: []byte("leader-addr")}
		resp := &raft.AppendEntriesResponse{}
		return resp, ta.AppendEntries("b", b.Addr(), req, resp)
	}
	if _, err := beat(3); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("follower got %d heartbeats, want 1", n)
	}
	resp, err := beat(3)
	if err != nil || !resp.Success || resp.Term != 3 || resp.LastLog != 9 {
		t.Fatalf("reused answer %+v, %v", resp, err)
	}
	if n := count(); n != 1 {
		t.Fatalf("follower got %d heartbeats within the window, want 1", n)
	}
	if _, err := beat(4); err != nil || count() != 2 {
		t.Fatalf("heartbeat of a new term: %v, follower got %d, want 2", err, count())
	}
	time.Sleep(window) // the window is what is tested
	if _, err := beat(4); err != nil || count() != 3 {
		t.Fatalf("heartbeat after the window: %v, follower got %d, want 3", err, count())
	}
	b.Close()
	waitFor(t, 5*time.Second, "b's silence", func() bool {
		_, heard := a.heardWithin(b.Addr(), time.Second)
		return !heard
	})
	if _, err := beat(4); err == nil {
		t.Fatalf("heartbeat to a closed node answered")
	}
}

// TestIdleAppendReuse: in a group that opts in, a pipelined
// AppendEntries without entries identical to one answered Success is
// answered from that answer without reaching the follower, in order
// behind the requests still in flight; one with another commit index,
// previous entry or term, or one with entries, is sent, and nothing is
// reused once the follower's node is gone.
func TestIdleAppendReuse(t *testing.T) {
	edit := func(c *Config, _ *Options) { c.PeerFailureTimeout = 2 * time.Second }
	a := newTestMux(t, edit)
	b := newTestMux(t, edit)
	var mu sync.Mutex
	received := 0
	tb := mustTransport(t, b.Mux, "g")
	serveRPCs(t, tb, func(rpc raft.RPC) {
		req := rpc.Command.(*raft.AppendEntriesRequest)
		mu.Lock()
		received++
		mu.Unlock()
		last := req.PrevLogEntry + uint64(len(req.Entries))
		rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, Success: true, LastLog: last}, nil)
	})
	ta := mustTransport(t, a.Mux, "g")
	ta.SetIdleAppendReuse(time.Minute)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return received
	}
	p, err := ta.AppendEntriesPipeline("b", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send := func(term, prev, commit uint64, entries int) *raft.AppendEntriesResponse {
		t.Helper()
		req := &raft.AppendEntriesRequest{RPCHeader: header("leader"), Term: term, PrevLogEntry: prev, PrevLogTerm: term, LeaderCommitIndex: commit}
		for i := range entries {
			req.Entries = append(req.Entries, &raft.Log{Index: prev + uint64(i) + 1, Term: term, Data: []byte("x")})
		}
		if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
			t.Fatal(err)
		}
		select {
		case f := <-p.Consumer():
			if f.Request() != req {
				t.Fatalf("future of another request")
			}
			return f.Response()
		case <-time.After(10 * time.Second):
			t.Fatal("no answer")
		}
		return nil
	}
	steps := []struct {
		name                  string
		term, prev, commit    uint64
		entries, wantReceived int
	}{
		{"first idle", 2, 5, 5, 0, 1},
		{"identical", 2, 5, 5, 0, 1},
		{"identical again", 2, 5, 5, 0, 1},
		{"entries", 2, 5, 5, 2, 2},
		{"new previous entry", 2, 7, 5, 0, 3},
		{"new commit index", 2, 7, 7, 0, 4},
		{"identical to the last", 2, 7, 7, 0, 4},
		{"new term", 3, 7, 7, 0, 5},
	}
	for _, s := range steps {
		resp := send(s.term, s.prev, s.commit, s.entries)
		if !resp.Success || resp.Term != s.term || resp.LastLog != s.prev+uint64(s.entries) {
			t.Fatalf("%s: answer %+v", s.name, resp)
		}
		if n := count(); n != s.wantReceived {
			t.Fatalf("%s: follower got %d requests, want %d", s.name, n, s.wantReceived)
		}
	}
	// In order: a reused answer waits behind a request in flight.
	slow := &raft.AppendEntriesRequest{RPCHeader: header("leader"), Term: 3, PrevLogEntry: 7, PrevLogTerm: 3, LeaderCommitIndex: 7,
		Entries: []*raft.Log{{Index: 8, Term: 3, Data: []byte("x")}}}
	idle := &raft.AppendEntriesRequest{RPCHeader: header("leader"), Term: 3, PrevLogEntry: 7, PrevLogTerm: 3, LeaderCommitIndex: 7}
	for _, req := range []*raft.AppendEntriesRequest{slow, idle} {
		if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []*raft.AppendEntriesRequest{slow, idle} {
		select {
		case f := <-p.Consumer():
			if f.Request() != want {
				t.Fatalf("future %d answers another request", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer %d", i)
		}
	}
	if n := count(); n != 6 {
		t.Fatalf("follower got %d requests, want 6 (the idle one reused)", n)
	}
	b.Close()
	waitFor(t, 5*time.Second, "b's silence", func() bool {
		_, heard := a.heardWithin(b.Addr(), time.Second)
		return !heard
	})
	var resp raft.AppendEntriesResponse
	if ta.reusedIdleAppend(b.Addr(), idle, &resp) {
		t.Fatalf("idle AppendEntries to a closed node answered from the cache")
	}
}

// TestHeartbeatBatchDeadlines: a group with a long batch window does not
// hold up a heartbeat of a group with a short one to the same peer; the
// batch goes at the earliest deadline in it.
func TestHeartbeatBatchDeadlines(t *testing.T) {
	a := newTestMux(t, func(c *Config, _ *Options) { c.HeartbeatBatchWindow = 5 * time.Millisecond })
	b := newTestMux(t, nil)
	answer := func(rpc raft.RPC) {
		rpc.Respond(&raft.AppendEntriesResponse{Term: rpc.Command.(*raft.AppendEntriesRequest).Term, Success: true}, nil)
	}
	for _, name := range []string{"slow", "fast"} {
		tb := mustTransport(t, b.Mux, name)
		tb.SetHeartbeatHandler(answer)
		serveRPCs(t, tb, answer)
	}
	slow := mustTransport(t, a.Mux, "slow")
	slow.SetHeartbeatBatchWindow(time.Second) // the test Mux's Timeout/2, the most it takes
	fast := mustTransport(t, a.Mux, "fast")
	hb := sampleRequests()["heartbeat"].(*raft.AppendEntriesRequest)
	beat := func(tr *Transport) (time.Duration, error) {
		began := time.Now()
		err := tr.AppendEntries("b", b.Addr(), hb, &raft.AppendEntriesResponse{})
		return time.Since(began), err
	}
	// Dial first, so the timings below are the batches'.
	if _, err := beat(fast); err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan time.Duration, 1)
	go func() {
		d, err := beat(slow)
		if err != nil {
			t.Error(err)
		}
		slowDone <- d
	}()
	// The slow heartbeat is in the batch (it waits for up to 1 s); a
	// fast one joins and both go within the fast window.
	waitFor(t, 5*time.Second, "the slow heartbeat queued", func() bool {
		c, err := peerControlConn(a.Mux, b.Addr())
		if err != nil {
			return false
		}
		c.heartbeatMu.Lock()
		defer c.heartbeatMu.Unlock()
		return len(c.heartbeats) == 1
	})
	if d, err := beat(fast); err != nil || d >= 700*time.Millisecond {
		t.Fatalf("fast heartbeat behind a slow one: %v after %v", err, d)
	}
	if d := <-slowDone; d >= 900*time.Millisecond {
		t.Fatalf("slow heartbeat not written with the fast one's batch: %v", d)
	}
	// Alone, a slow heartbeat waits for its window.
	if d, err := beat(slow); err != nil || d < 900*time.Millisecond {
		t.Fatalf("slow heartbeat alone answered after %v (%v), want its 1 s window", d, err)
	}
}

// peerControlConn returns m's control connection to addr.
func peerControlConn(m *Mux, addr raft.ServerAddress) (*clientConn, error) {
	p, err := m.peer(addr)
	if err != nil {
		return nil, err
	}
	return p.conn(classControl)
}

// TestAnnounceLeaving: a replica leaving its group tells its peers; each
// peer's group gets the leaver's address, and a peer without the group
// answers an error.
func TestAnnounceLeaving(t *testing.T) {
	a := newTestMux(t, nil)
	b := newTestMux(t, nil)
	c := newTestMux(t, nil)
	ta := mustTransport(t, a.Mux, "g")
	tb := mustTransport(t, b.Mux, "g")
	mustTransport(t, c.Mux, "other")
	got := make(chan raft.ServerAddress, 1)
	tb.SetLeaderLeftHandler(func(addr raft.ServerAddress) { got <- addr })
	if err := ta.AnnounceLeaving([]raft.ServerAddress{b.Addr()}); err != nil {
		t.Fatal(err)
	}
	select {
	case addr := <-got:
		if addr != a.Addr() {
			t.Fatalf("leaver named %q, want %q", addr, a.Addr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's group was not told")
	}
	err := ta.AnnounceLeaving([]raft.ServerAddress{b.Addr(), c.Addr()})
	if err == nil || !strings.Contains(err.Error(), `no group "g"`) {
		t.Fatalf("announcing to a node without the group: %v, want no group", err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the peer with the group was not told on the second announcement")
	}
}
