package transport

import (
	"errors"
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

// TestPeerDownWhenSilent: a peer behind a link that drops everything is
// declared down after PeerFailureTimeout of silence (within two checks
// more), and up again once the link carries frames again.
func TestPeerDownWhenSilent(t *testing.T) {
	const timeout = 500 * time.Millisecond
	b := newTestMux(t, func(c *Config, _ *Options) { c.PeerFailureTimeout = timeout })
	px := newProxy(t, string(b.Addr()))
	a := newTestMux(t, func(c *Config, o *Options) {
		c.PeerFailureTimeout = timeout
		o.DialAddress = func(raft.ServerAddress) string { return px.Addr() }
	})
	down := downRecorder(t, a.Mux)
	a.WatchPeer(b.Addr())
	waitFor(t, 5*time.Second, "a connected to b", func() bool {
		p, _ := a.peer(b.Addr())
		return p.control.Load() != nil && !a.PeerDown(b.Addr())
	})
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
