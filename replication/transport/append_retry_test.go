package transport

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// appendRequest is an AppendEntries carrying one entry.
func appendRequest() *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{RPCHeader: header("leader"), Term: 1, PrevLogEntry: 1, PrevLogTerm: 1,
		Entries: []*raft.Log{{Index: 2, Term: 1, Data: []byte("x")}}}
}

// answerSuccess serves group on m, answering every AppendEntries Success.
func answerSuccess(t *testing.T, m *Mux, group string) {
	serveRPCs(t, mustTransport(t, m, group), func(rpc raft.RPC) {
		req := rpc.Command.(*raft.AppendEntriesRequest)
		rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, Success: true, LastLog: req.PrevLogEntry + uint64(len(req.Entries))}, nil)
	})
}

// resultWithin returns what a call in progress sends on done, failing
// the test when it sends nothing within d.
func resultWithin(t *testing.T, done <-chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s: no answer within %v", what, d)
		return nil
	}
}

// TestAppendRetryNoGroup: an AppendEntries to a node that has not opened
// the group fails at once without the retry wait, and with it succeeds
// once the group opens there.
func TestAppendRetryNoGroup(t *testing.T) {
	edit := func(c *Config, _ *Options) { c.PeerFailureTimeout = 2 * time.Second }
	a := newTestMux(t, edit)
	b := newTestMux(t, edit)
	ta := mustTransport(t, a.Mux, "g")
	err := ta.AppendEntries("b", b.Addr(), appendRequest(), &raft.AppendEntriesResponse{})
	if !errors.Is(err, errNoGroup) {
		t.Fatalf("AppendEntries for a group b has not open: %v, want errNoGroup", err)
	}

	ta.SetAppendRetryWait(10 * time.Second)
	done := make(chan error, 1)
	resp := &raft.AppendEntriesResponse{}
	go func() { done <- ta.AppendEntries("b", b.Addr(), appendRequest(), resp) }()
	waitFor(t, 5*time.Second, "the call to wait for the group", func() bool { return ta.appendWaits.Load() > 0 })
	answerSuccess(t, b.Mux, "g")
	if err := resultWithin(t, done, 10*time.Second, "AppendEntries after the group opened"); err != nil || !resp.Success {
		t.Fatalf("AppendEntries after the group opened: %v, success %v", err, resp.Success)
	}
}

// TestAppendRetryPeerDown: an AppendEntries to a node that is down waits,
// with the retry wait, for it to come back and is answered by it; closing
// the group ends such a wait at once.
func TestAppendRetryPeerDown(t *testing.T) {
	edit := func(c *Config, _ *Options) { c.PeerFailureTimeout = time.Second }
	a := newTestMux(t, edit)
	b := newTestMux(t, edit)
	addr := b.Addr()
	answerSuccess(t, b.Mux, "g")
	ta := mustTransport(t, a.Mux, "g")
	ta.SetAppendRetryWait(20 * time.Second)
	if err := ta.AppendEntries("b", addr, appendRequest(), &raft.AppendEntriesResponse{}); err != nil {
		t.Fatalf("AppendEntries to b while up: %v", err)
	}
	b.Close()

	done := make(chan error, 1)
	resp := &raft.AppendEntriesResponse{}
	go func() { done <- ta.AppendEntries("b", addr, appendRequest(), resp) }()
	waitFor(t, 10*time.Second, "the call to wait for b", func() bool { return ta.appendWaits.Load() > 0 })
	select {
	case err := <-done:
		t.Fatalf("AppendEntries returned %v while b is down, want it to wait", err)
	default:
	}

	// b comes back on the same address.
	l, err := net.Listen("tcp", string(addr))
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	cfg := testConfig()
	cfg.Advertise = addr
	cfg.PeerFailureTimeout = time.Second
	b2, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = b2.Serve(l) }()
	t.Cleanup(func() { b2.Close() })
	answerSuccess(t, b2, "g")
	if err := resultWithin(t, done, 15*time.Second, "AppendEntries once b is back"); err != nil || !resp.Success {
		t.Fatalf("AppendEntries once b is back: %v, success %v", err, resp.Success)
	}

	// Down again: closing the group ends the wait.
	b2.Close()
	go func() { done <- ta.AppendEntries("b", addr, appendRequest(), &raft.AppendEntriesResponse{}) }()
	waits := ta.appendWaits.Load()
	waitFor(t, 10*time.Second, "the call to wait for b again", func() bool { return ta.appendWaits.Load() > waits })
	ta.Close()
	if err := resultWithin(t, done, 5*time.Second, "closing the group ends the wait"); err == nil {
		t.Fatal("AppendEntries to a down peer succeeded after the group closed")
	}
}

// TestDetach: a detached group is answered as one not open, while its own
// calls still go out and are answered; EndAppendRetries ends a retry wait.
func TestDetach(t *testing.T) {
	edit := func(c *Config, _ *Options) { c.PeerFailureTimeout = 2 * time.Second }
	a := newTestMux(t, edit)
	b := newTestMux(t, edit)
	answerSuccess(t, a.Mux, "g")
	tb := mustTransport(t, b.Mux, "g")
	serveRPCs(t, tb, func(rpc raft.RPC) { t.Errorf("a detached group got %T", rpc.Command) })
	tb.Detach()
	resp := &raft.AppendEntriesResponse{}
	if err := tb.AppendEntries("a", a.Addr(), appendRequest(), resp); err != nil || !resp.Success {
		t.Fatalf("a detached group's own AppendEntries: %v, success %v", err, resp.Success)
	}
	sender := newTestMux(t, edit)
	ts := mustTransport(t, sender.Mux, "g")
	if err := ts.AppendEntries("b", b.Addr(), appendRequest(), &raft.AppendEntriesResponse{}); !errors.Is(err, errNoGroup) {
		t.Fatalf("AppendEntries to a detached group: %v, want errNoGroup", err)
	}

	ts.SetAppendRetryWait(time.Minute)
	done := make(chan error, 1)
	go func() { done <- ts.AppendEntries("b", b.Addr(), appendRequest(), &raft.AppendEntriesResponse{}) }()
	waitFor(t, 5*time.Second, "the call to wait for the group", func() bool { return ts.appendWaits.Load() > 0 })
	ts.EndAppendRetries()
	if err := resultWithin(t, done, 5*time.Second, "EndAppendRetries ends the wait"); !errors.Is(err, errNoGroup) {
		t.Fatalf("AppendEntries after EndAppendRetries: %v, want errNoGroup", err)
	}
}

// TestVoteRetryNoGroup: a RequestVote to a node that has not opened the
// group yet is asked again, with the retry wait, and answered once it
// opens; without the wait it fails at once.
func TestVoteRetryNoGroup(t *testing.T) {
	edit := func(c *Config, _ *Options) { c.PeerFailureTimeout = 2 * time.Second }
	a := newTestMux(t, edit)
	b := newTestMux(t, edit)
	ta := mustTransport(t, a.Mux, "g")
	vote := func() (*raft.RequestVoteResponse, error) {
		resp := &raft.RequestVoteResponse{}
		return resp, ta.RequestVote("b", b.Addr(), &raft.RequestVoteRequest{RPCHeader: header("candidate"), Term: 5, LastLogIndex: 3, LastLogTerm: 4}, resp)
	}
	if _, err := vote(); !errors.Is(err, errNoGroup) {
		t.Fatalf("RequestVote for a group b has not open: %v, want errNoGroup", err)
	}
	ta.SetAppendRetryWait(10 * time.Second)
	type result struct {
		resp *raft.RequestVoteResponse
		err  error
	}
	done := make(chan result, 1)
	go func() { r, err := vote(); done <- result{r, err} }()
	waitFor(t, 5*time.Second, "the vote to wait for the group", func() bool { return ta.appendWaits.Load() > 0 })
	serveRPCs(t, mustTransport(t, b.Mux, "g"), func(rpc raft.RPC) {
		req := rpc.Command.(*raft.RequestVoteRequest)
		rpc.Respond(&raft.RequestVoteResponse{Term: req.Term, Granted: true}, nil)
	})
	select {
	case r := <-done:
		if r.err != nil || !r.resp.Granted {
			t.Fatalf("RequestVote once the group opened: %v, granted %v", r.err, r.resp.Granted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RequestVote still waiting 10s after the group opened")
	}
}
