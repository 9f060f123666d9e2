package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func header(id string) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte(id + "-addr")}
}

// sampleRequests returns one request of every type with every field set.
func sampleRequests() map[string]any {
	now := time.Unix(1700000000, 123456789)
	big := bytes.Repeat([]byte{0xab}, 10_000)
	return map[string]any{
		"append entries": &raft.AppendEntriesRequest{
			RPCHeader: header("leader"), Term: 7, Leader: []byte("leader-addr"),
			PrevLogEntry: 41, PrevLogTerm: 6, LeaderCommitIndex: 40,
			Entries: []*raft.Log{
				{Index: 42, Term: 7, Type: raft.LogCommand, Data: []byte("small"), Extensions: []byte("ext"), AppendedAt: now},
				{Index: 43, Term: 7, Type: raft.LogCommand, Data: big},
				{Index: 44, Term: 7, Type: raft.LogNoop},
			},
		},
		"heartbeat": &raft.AppendEntriesRequest{RPCHeader: header("leader"), Term: 7, Leader: []byte("leader-addr")},
		"request vote": &raft.RequestVoteRequest{
			RPCHeader: header("candidate"), Term: 9, Candidate: []byte("candidate-addr"),
			LastLogIndex: 100, LastLogTerm: 8, LeadershipTransfer: true,
		},
		"request pre-vote": &raft.RequestPreVoteRequest{RPCHeader: header("candidate"), Term: 9, LastLogIndex: 100, LastLogTerm: 8},
		"timeout now":      &raft.TimeoutNowRequest{RPCHeader: header("leader")},
		"install snapshot": &raft.InstallSnapshotRequest{
			RPCHeader: header("leader"), SnapshotVersion: raft.SnapshotVersionMax, Term: 7, Leader: []byte("leader-addr"),
			LastLogIndex: 500, LastLogTerm: 7, Peers: []byte("peers"), Configuration: []byte("configuration"),
			ConfigurationIndex: 3, Size: 3<<20 + 17,
		},
	}
}

// sampleResponse returns a response with every field set for req.
func sampleResponse(req any) any {
	switch req.(type) {
	case *raft.AppendEntriesRequest:
		return &raft.AppendEntriesResponse{RPCHeader: header("follower"), Term: 7, LastLog: 44, Success: true, NoRetryBackoff: true}
	case *raft.RequestVoteRequest:
		return &raft.RequestVoteResponse{RPCHeader: header("voter"), Term: 9, Peers: []byte("p"), Granted: true}
	case *raft.RequestPreVoteRequest:
		return &raft.RequestPreVoteResponse{RPCHeader: header("voter"), Term: 9, Granted: true}
	case *raft.InstallSnapshotRequest:
		return &raft.InstallSnapshotResponse{RPCHeader: header("follower"), Term: 7, Success: true}
	case *raft.TimeoutNowRequest:
		return &raft.TimeoutNowResponse{RPCHeader: header("follower")}
	}
	return nil
}

// TestRoundTrip sends every RPC type between two Muxes over TCP and checks
// that request and response arrive field for field, snapshot bytes
// included.
func TestRoundTrip(t *testing.T) {
	a := newTestMux(t, nil)
	b := newTestMux(t, nil)
	ta := mustTransport(t, a.Mux, "g")
	tb := mustTransport(t, b.Mux, "g")
	snapshot := make([]byte, 3<<20+17)
	rand.Read(snapshot)

	var got atomic.Pointer[any]
	serveRPCs(t, tb, func(rpc raft.RPC) {
		if rpc.Reader != nil {
			data, err := io.ReadAll(rpc.Reader)
			if err != nil {
				rpc.Respond(nil, err)
				return
			}
			if !bytes.Equal(data, snapshot) {
				rpc.Respond(nil, errors.New("snapshot bytes differ"))
				return
			}
		}
		cmd := rpc.Command
		got.Store(&cmd)
		rpc.Respond(sampleResponse(rpc.Command), nil)
	})

	for name, req := range sampleRequests() {
		t.Run(name, func(t *testing.T) {
			target := b.Addr()
			var resp any
			var err error
			switch r := req.(type) {
			case *raft.AppendEntriesRequest:
				out := &raft.AppendEntriesResponse{}
				err, resp = ta.AppendEntries("b", target, r, out), out
			case *raft.RequestVoteRequest:
				out := &raft.RequestVoteResponse{}
				err, resp = ta.RequestVote("b", target, r, out), out
			case *raft.RequestPreVoteRequest:
				out := &raft.RequestPreVoteResponse{}
				err, resp = ta.RequestPreVote("b", target, r, out), out
			case *raft.TimeoutNowRequest:
				out := &raft.TimeoutNowResponse{}
				err, resp = ta.TimeoutNow("b", target, r, out), out
			case *raft.InstallSnapshotRequest:
				out := &raft.InstallSnapshotResponse{}
				err, resp = ta.InstallSnapshot("b", target, r, out, bytes.NewReader(snapshot)), out
			}
			if err != nil {
				t.Fatalf("rpc: %v", err)
			}
			if want := sampleResponse(req); !reflect.DeepEqual(resp, want) {
				t.Errorf("response\n got %#v\nwant %#v", resp, want)
			}
			if !reflect.DeepEqual(*got.Load(), req) {
				t.Errorf("request\n got %#v\nwant %#v", *got.Load(), req)
			}
		})
	}
}

// TestHeartbeatFastPath checks that the first heartbeat of a term goes to
// the consumer (raft may write its stable store on it) and, once raft
// answered it in that term, later heartbeats go to the handler, not the
// consumer, even while the group's raft is stuck on another RPC; a
// heartbeat of a new term goes to the consumer again.
func TestHeartbeatFastPath(t *testing.T) {
	a := newTestMux(t, nil)
	b := newTestMux(t, nil)
	ta := mustTransport(t, a.Mux, "g")
	tb := mustTransport(t, b.Mux, "g")
	var beats atomic.Int64
	tb.SetHeartbeatHandler(func(rpc raft.RPC) {
		beats.Add(1)
		rpc.Respond(&raft.AppendEntriesResponse{Term: rpc.Command.(*raft.AppendEntriesRequest).Term, Success: true}, nil)
	})
	hb := sampleRequests()["heartbeat"].(*raft.AppendEntriesRequest)
	consumed := make(chan uint64, 1)
	go func() {
		rpc := <-tb.Consumer()
		term := rpc.Command.(*raft.AppendEntriesRequest).Term
		rpc.Respond(&raft.AppendEntriesResponse{Term: term, Success: true}, nil)
		consumed <- term
	}()
	if err := ta.AppendEntries("b", b.Addr(), hb, &raft.AppendEntriesResponse{}); err != nil {
		t.Fatalf("first heartbeat: %v", err)
	}
	if term := <-consumed; term != hb.Term || beats.Load() != 0 {
		t.Fatalf("first heartbeat reached the consumer with term %d and the handler %d times; want term %d, 0 times", term, beats.Load(), hb.Term)
	}
	// Nobody reads tb.Consumer any more: an AppendEntries with entries
	// waits there.
	stuck := make(chan error, 1)
	go func() {
		req := sampleRequests()["append entries"].(*raft.AppendEntriesRequest)
		stuck <- ta.AppendEntries("b", b.Addr(), req, &raft.AppendEntriesResponse{})
	}()
	for i := 0; i < 10; i++ {
		var resp raft.AppendEntriesResponse
		if err := ta.AppendEntries("b", b.Addr(), hb, &resp); err != nil {
			t.Fatalf("heartbeat %d: %v", i, err)
		}
		if !resp.Success || resp.Term != hb.Term {
			t.Fatalf("heartbeat %d: response %+v", i, resp)
		}
	}
	if n := beats.Load(); n != 10 {
		t.Errorf("handler saw %d heartbeats, want 10", n)
	}
	// A new term waits behind the stuck RPC in the queue: it fails when
	// the group closes, never having reached the handler.
	next := *hb
	next.Term++
	newTerm := make(chan error, 1)
	go func() { newTerm <- ta.AppendEntries("b", b.Addr(), &next, &raft.AppendEntriesResponse{}) }()
	waitFor(t, 5*time.Second, "the new term's heartbeat to be queued", func() bool {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		return len(tb.queue) == 1
	})
	tb.Close()
	if err := <-stuck; err == nil {
		t.Errorf("append entries to a closed group succeeded")
	}
	if err := <-newTerm; err == nil {
		t.Errorf("heartbeat of a new term to a closed group succeeded")
	}
	if n := beats.Load(); n != 10 {
		t.Errorf("handler saw %d heartbeats, want 10 (a new term must not take the fast path)", n)
	}
}

// TestPipeline sends many pipelined AppendEntries and checks that the
// futures come back in order with their own responses.
func TestPipeline(t *testing.T) {
	a := newTestMux(t, nil)
	b := newTestMux(t, nil)
	ta := mustTransport(t, a.Mux, "g")
	tb := mustTransport(t, b.Mux, "g")
	serveRPCs(t, tb, func(rpc raft.RPC) {
		req := rpc.Command.(*raft.AppendEntriesRequest)
		rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, LastLog: req.Entries[0].Index, Success: true}, nil)
	})
	p, err := ta.AppendEntriesPipeline("b", b.Addr())
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	defer p.Close()
	const n = 200
	sent := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			req := &raft.AppendEntriesRequest{Term: 1, Entries: []*raft.Log{{Index: uint64(i), Data: []byte("x")}}}
			if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	timeout := time.After(10 * time.Second)
	for i := 1; i <= n; i++ {
		select {
		case f := <-p.Consumer():
			if err := f.Error(); err != nil {
				t.Fatalf("future %d: %v", i, err)
			}
			if got := f.Response().LastLog; got != uint64(i) || f.Request().Entries[0].Index != uint64(i) {
				t.Fatalf("future %d: response for %d, request %d", i, got, f.Request().Entries[0].Index)
			}
		case <-timeout:
			t.Fatalf("timed out waiting for future %d", i)
		}
	}
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
}

// TestErrors checks the answers to an unknown group, a closed group, an
// oversized frame and a dead peer: errors, not hangs, and the connection
// stays usable for other groups.
func TestErrors(t *testing.T) {
	a := newTestMux(t, nil)
	b := newTestMux(t, func(c *Config, _ *Options) { c.MaxFrameSize = 64 << 10 })
	ta := mustTransport(t, a.Mux, "g")
	other := mustTransport(t, a.Mux, "other")
	tb := mustTransport(t, b.Mux, "other")
	serveRPCs(t, tb, func(rpc raft.RPC) { rpc.Respond(sampleResponse(rpc.Command), nil) })
	vote := sampleRequests()["request vote"].(*raft.RequestVoteRequest)

	t.Run("unknown group", func(t *testing.T) {
		err := ta.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{})
		if err == nil || !strings.Contains(err.Error(), `no group "g"`) {
			t.Fatalf("err = %v, want no group", err)
		}
		if err := other.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{}); err != nil {
			t.Fatalf("other group after unknown group: %v", err)
		}
	})
	t.Run("frame too large for receiver", func(t *testing.T) {
		req := &raft.AppendEntriesRequest{Term: 1, Entries: []*raft.Log{{Index: 1, Data: make([]byte, 100<<10)}}}
		if err := other.AppendEntries("b", b.Addr(), req, &raft.AppendEntriesResponse{}); err == nil {
			t.Fatalf("oversized frame succeeded")
		}
		// The receiver dropped the bulk connection; the next call re-dials.
		waitFor(t, 5*time.Second, "re-dial after dropped connection", func() bool {
			small := &raft.AppendEntriesRequest{Term: 1, Entries: []*raft.Log{{Index: 1, Data: []byte("x")}}}
			return other.AppendEntries("b", b.Addr(), small, &raft.AppendEntriesResponse{}) == nil
		})
	})
	t.Run("closed transport", func(t *testing.T) {
		tr := mustTransport(t, a.Mux, "closing")
		tr.Close()
		if err := tr.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{}); !errors.Is(err, ErrClosed) {
			t.Fatalf("err = %v, want ErrClosed", err)
		}
		again, err := a.Transport("closing")
		if err != nil {
			t.Fatalf("reopen closed group: %v", err)
		}
		again.Close()
	})
	t.Run("group closed on the receiver", func(t *testing.T) {
		sender := mustTransport(t, a.Mux, "short-lived")
		receiver := mustTransport(t, b.Mux, "short-lived")
		serveRPCs(t, receiver, func(rpc raft.RPC) { rpc.Respond(sampleResponse(rpc.Command), nil) })
		if err := sender.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{}); err != nil {
			t.Fatalf("before close: %v", err)
		}
		receiver.Close()
		start := time.Now()
		err := sender.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{})
		if err == nil || !strings.Contains(err.Error(), `no group "short-lived"`) {
			t.Fatalf("after close: %v, want no group", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("error took %v, want an immediate answer", took)
		}
		// The group sharing the connections is unaffected.
		if err := other.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{}); err != nil {
			t.Fatalf("other group after a close: %v", err)
		}
	})
	t.Run("duplicate group", func(t *testing.T) {
		if _, err := a.Transport("other"); !errors.Is(err, ErrGroupExists) {
			t.Fatalf("err = %v, want ErrGroupExists", err)
		}
	})
	t.Run("dead peer", func(t *testing.T) {
		err := other.RequestVote("b", "127.0.0.1:1", vote, &raft.RequestVoteResponse{})
		if err == nil {
			t.Fatalf("rpc to a closed port succeeded")
		}
	})
}

// TestHeartbeatNotBehindBulk sends one group's 16 MiB AppendEntries over a
// link paced to 16 MB/s and checks that another group's heartbeats, sent
// meanwhile, are answered promptly: they travel on the control connection,
// not behind the bulk one.
func TestHeartbeatNotBehindBulk(t *testing.T) {
	b := newTestMux(t, func(c *Config, _ *Options) { c.Timeout = 10 * time.Second })
	link := newProxy(t, b.listener.Addr().String())
	link.bytesPerSecond = 16 << 20
	a := newTestMux(t, func(c *Config, o *Options) {
		c.Timeout = 10 * time.Second
		o.DialAddress = func(raft.ServerAddress) string { return link.Addr() }
	})
	bigA, bigB := mustTransport(t, a.Mux, "big"), mustTransport(t, b.Mux, "big")
	smallA, smallB := mustTransport(t, a.Mux, "small"), mustTransport(t, b.Mux, "small")
	serveRPCs(t, bigB, func(rpc raft.RPC) { rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil) })
	answer := func(rpc raft.RPC) {
		rpc.Respond(&raft.AppendEntriesResponse{Term: rpc.Command.(*raft.AppendEntriesRequest).Term, Success: true}, nil)
	}
	smallB.SetHeartbeatHandler(answer)
	serveRPCs(t, smallB, answer) // the first heartbeat of a term

	// Open the control connection first, so it is not dialled while the
	// bulk one saturates the link.
	hb := sampleRequests()["heartbeat"].(*raft.AppendEntriesRequest)
	if err := smallA.AppendEntries("b", b.Addr(), hb, &raft.AppendEntriesResponse{}); err != nil {
		t.Fatalf("first heartbeat: %v", err)
	}
	big := &raft.AppendEntriesRequest{Term: 1, Entries: []*raft.Log{{Index: 1, Data: make([]byte, 16<<20)}}}
	done := make(chan error, 1)
	go func() { done <- bigA.AppendEntries("b", b.Addr(), big, &raft.AppendEntriesResponse{}) }()
	waitFor(t, 10*time.Second, "the big request to be under way", func() bool { return link.forwarded.Load() > 2<<20 })
	var slowest time.Duration
	for i := 0; i < 10; i++ {
		start := time.Now()
		if err := smallA.AppendEntries("b", b.Addr(), hb, &raft.AppendEntriesResponse{}); err != nil {
			t.Fatalf("heartbeat %d: %v", i, err)
		}
		slowest = max(slowest, time.Since(start))
	}
	if slowest > 300*time.Millisecond {
		t.Errorf("slowest heartbeat took %v while a 16 MiB request was on the wire", slowest)
	}
	t.Logf("slowest heartbeat %v while 16 MiB crossed a 16 MB/s link", slowest)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("big append entries: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("big append entries did not finish within 15s")
	}
}

// TestMalformedConnection checks that a connection with a wrong preface or
// a malformed frame is closed, and that the Mux keeps serving others.
func TestMalformedConnection(t *testing.T) {
	b := newTestMux(t, nil)
	tb := mustTransport(t, b.Mux, "g")
	serveRPCs(t, tb, func(rpc raft.RPC) { rpc.Respond(sampleResponse(rpc.Command), nil) })
	cases := map[string][]byte{
		"wrong preface":  []byte("GET / HTTP/1.1\r\n\r\n"),
		"huge frame":     append(preface(), 0xff, 0xff, 0xff, 0xff),
		"short frame":    append(preface(), 0, 0, 0, 2, 1, 0),
		"garbage frame":  append(preface(), 0, 0, 0, 12, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff),
		"unknown type":   append(preface(), 0, 0, 0, 11, 0x42, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'g'),
		"response frame": append(preface(), 0, 0, 0, 11, 0x81, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'g'),
	}
	for name, input := range cases {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", b.listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(input); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Fatalf("read after malformed input: %d bytes, %v; want the connection closed (EOF)", n, err)
			}
		})
	}
	a := newTestMux(t, nil)
	ta := mustTransport(t, a.Mux, "g")
	if err := ta.RequestVote("b", b.Addr(), sampleRequests()["request vote"].(*raft.RequestVoteRequest), &raft.RequestVoteResponse{}); err != nil {
		t.Fatalf("rpc after malformed connections: %v", err)
	}
}

// TestTimeout checks that an RPC whose group never answers fails within
// about Config.Timeout, and that the connection survives for others.
func TestTimeout(t *testing.T) {
	var dials atomic.Int64
	edit := func(c *Config, o *Options) {
		c.Timeout = 300 * time.Millisecond
		o.Dial = func(ctx context.Context, address string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", address)
		}
	}
	a := newTestMux(t, edit)
	b := newTestMux(t, edit)
	ta := mustTransport(t, a.Mux, "silent")
	mustTransport(t, b.Mux, "silent") // nobody reads its Consumer
	other := mustTransport(t, a.Mux, "other")
	serveRPCs(t, mustTransport(t, b.Mux, "other"), func(rpc raft.RPC) { rpc.Respond(sampleResponse(rpc.Command), nil) })
	vote := sampleRequests()["request vote"].(*raft.RequestVoteRequest)
	start := time.Now()
	err := ta.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{})
	if err == nil {
		t.Fatalf("rpc to a group that never answers succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("rpc failed after %v, want about 300ms", took)
	}
	t.Logf("unanswered rpc failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err := other.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{}); err != nil {
		t.Fatalf("other group after a timeout: %v", err)
	}
	// The timeout made the sender ping the connection; the receiver
	// answers pings itself, so the connection stays.
	p, _ := a.peer(b.Addr())
	p.mu.Lock()
	c := p.conns[classControl]
	p.mu.Unlock()
	waitFor(t, 2*time.Second, "the ping to be answered", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.probing
	})
	if !c.alive() || dials.Load() != 1 {
		t.Errorf("after a timeout: connection alive %v, %d dials; want alive, 1 dial", c.alive(), dials.Load())
	}
}

// TestConfigValidate checks that each bad field is refused.
func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Advertise = "127.0.0.1:7000"
	if err := good.Validate(); err != nil {
		t.Fatalf("default config with an address: %v", err)
	}
	for name, edit := range map[string]func(*Config){
		"no advertise":        func(c *Config) { c.Advertise = "" },
		"zero timeout":        func(c *Config) { c.Timeout = 0 },
		"tiny frames":         func(c *Config) { c.MaxFrameSize = 100 },
		"no in-flight":        func(c *Config) { c.MaxInFlight = 0 },
		"no snapshot streams": func(c *Config) { c.MaxSnapshotStreams = 0 },
		"zero snapshot scale": func(c *Config) { c.SnapshotTimeoutScale = 0 },
		"negative redial":     func(c *Config) { c.RedialBackoff = -1 },
		"no queue":            func(c *Config) { c.MaxQueuedPerGroup = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			edit(&c)
			if err := c.Validate(); err == nil {
				t.Errorf("Validate accepted %+v", c)
			}
			if _, err := New(c, Options{}); err == nil {
				t.Errorf("New accepted %+v", c)
			}
		})
	}
}

// TestBlackHole drops everything a link carries: an RPC times out, the
// ping that follows goes unanswered, the connection is closed, and once the
// link carries traffic again a new connection is dialled and works.
func TestBlackHole(t *testing.T) {
	var dials atomic.Int64
	b := newTestMux(t, func(c *Config, _ *Options) { c.Timeout = 300 * time.Millisecond })
	link := newProxy(t, b.listener.Addr().String())
	a := newTestMux(t, func(c *Config, o *Options) {
		c.Timeout = 300 * time.Millisecond
		o.Dial = func(ctx context.Context, _ string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", link.Addr())
		}
	})
	ta := mustTransport(t, a.Mux, "g")
	serveRPCs(t, mustTransport(t, b.Mux, "g"), func(rpc raft.RPC) { rpc.Respond(sampleResponse(rpc.Command), nil) })
	vote := sampleRequests()["request vote"].(*raft.RequestVoteRequest)
	if err := ta.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{}); err != nil {
		t.Fatalf("rpc before the black hole: %v", err)
	}
	p, _ := a.peer(b.Addr())
	p.mu.Lock()
	first := p.conns[classControl]
	p.mu.Unlock()

	link.blackHole.Store(true)
	if err := ta.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("rpc into the black hole: %v, want ErrTimeout", err)
	}
	waitFor(t, 3*time.Second, "the silent connection to be closed", func() bool { return !first.alive() })

	link.blackHole.Store(false)
	if err := ta.RequestVote("b", b.Addr(), vote, &raft.RequestVoteResponse{}); err != nil {
		t.Fatalf("rpc after the link came back: %v", err)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d dials, want 2 (one before, one after the black hole)", n)
	}
}
