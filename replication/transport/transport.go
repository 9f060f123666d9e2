package transport

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Transport is one Raft group's raft.Transport on a Mux. Its RPCs carry the
// group id; RPCs for the group arriving at the Mux come out of Consumer in
// the order each peer sent them. It implements raft.Transport,
// raft.WithClose and raft.WithPreVote and is safe for concurrent use.
type Transport struct {
	m        *Mux
	group    string
	consumer chan raft.RPC

	// ctx is cancelled by Close (and by the Mux's Close); every wait of an
	// RPC of this group selects on it.
	ctx    context.Context
	cancel context.CancelFunc

	heartbeatMu sync.Mutex
	heartbeatFn func(raft.RPC)
	// heartbeatTerm is the term whose heartbeats take the fast path, 0
	// until raft accepts one (fastHeartbeat, noteHeartbeat).
	heartbeatTerm atomic.Uint64

	logReaderMu sync.Mutex
	logReaderFn LogReader
	restoredFn  func(raft.ServerAddress) // restore_wait.go

	peerDownMu sync.Mutex
	peerDownFn func(raft.ServerAddress)
	peerUpFn   func(raft.ServerAddress)
	leftFn     func(raft.ServerAddress) // leaving.go

	// reuse holds the real heartbeat answers a heartbeat may be answered
	// from (heartbeat_reuse.go).
	reuse heartbeatReuse
	// batchWindow, in nanoseconds, is this group's heartbeat batch window
	// when > 0 (SetHeartbeatBatchWindow), else the Mux's.
	batchWindow atomic.Int64
	// appendRetryWait, in nanoseconds, is how long a failed AppendEntries
	// may be retried (SetAppendRetryWait, append_retry.go); 0: never.
	appendRetryWait atomic.Int64
	// appendWaits counts the waits appendRetrying began (tests read it).
	appendWaits atomic.Uint64
	// retryStop is closed by EndAppendRetries (once: retryStopOnce).
	retryStop     chan struct{}
	retryStopOnce sync.Once

	// snapOut holds this group's InstallSnapshot streams in progress, by
	// target, and restoreRead signals a ReadLog answered to a restore
	// waiting for raft's answer (restore_wait.go). snapOutMu is taken
	// with no other lock held.
	snapOutMu   sync.Mutex
	snapOut     map[raft.ServerAddress]*snapshotOut
	restoreRead chan struct{}

	// mu guards the fields below. It is never held while calling into raft
	// or writing to a connection.
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // this group's goroutines (goFunc)
	// queue holds incoming RPCs not yet taken by raft, in arrival order;
	// one drain goroutine runs while it is not empty (draining).
	queue    []inbound
	draining bool
}

var (
	_ raft.Transport   = (*Transport)(nil)
	_ raft.WithClose   = (*Transport)(nil)
	_ raft.WithPreVote = (*Transport)(nil)
)

// inbound is an incoming RPC waiting for its group's raft. sc is nil for
// a request of this node's own (ElectNow), which nobody is answered for;
// such a request is dropped if still, when set, reports false just before
// raft would get it.
type inbound struct {
	sc    *serverConn
	id    uint64
	typ   byte
	req   any
	still func() bool
}

// respondError answers in with err alone, if it came from a peer.
func (in inbound) respondError(err error) {
	if in.sc != nil {
		in.sc.respondError(in.id, in.typ, err)
	}
}

func newTransport(m *Mux, group string) *Transport {
	t := &Transport{m: m, group: group, consumer: make(chan raft.RPC), retryStop: make(chan struct{}), restoreRead: make(chan struct{}, 1)}
	t.ctx, t.cancel = context.WithCancel(m.ctx)
	return t
}

// Group returns the group id this transport carries.
func (t *Transport) Group() string { return t.group }

// Consumer returns the channel of incoming RPCs. Each must be answered
// (RPC.Respond) within Config.Timeout or the sender gets ErrGroupBusy.
func (t *Transport) Consumer() <-chan raft.RPC { return t.consumer }

// LocalAddr returns the Mux's Config.Advertise.
func (t *Transport) LocalAddr() raft.ServerAddress { return t.m.cfg.Advertise }

// EncodePeer returns addr's bytes; id is not used.
func (t *Transport) EncodePeer(id raft.ServerID, addr raft.ServerAddress) []byte {
	return []byte(addr)
}

// DecodePeer returns buf as an address.
func (t *Transport) DecodePeer(buf []byte) raft.ServerAddress { return raft.ServerAddress(buf) }

// SetHeartbeatHandler installs cb as the fast path for heartbeats (an
// AppendEntries with a term, a leader and nothing else): cb runs on the
// connection's reader, ahead of the group's queue. Nil removes it, and
// heartbeats go to Consumer.
func (t *Transport) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	t.heartbeatMu.Lock()
	defer t.heartbeatMu.Unlock()
	t.heartbeatFn = cb
}

func (t *Transport) heartbeatHandler() func(raft.RPC) {
	t.heartbeatMu.Lock()
	defer t.heartbeatMu.Unlock()
	return t.heartbeatFn
}

// SetPeerDownHandler installs fn, called with a peer's address each time
// the Mux's failure detector declares that peer down (liveness.go). fn
// runs on the detector's goroutine and must not block. Nil removes it.
func (t *Transport) SetPeerDownHandler(fn func(peer raft.ServerAddress)) {
	t.peerDownMu.Lock()
	defer t.peerDownMu.Unlock()
	t.peerDownFn = fn
}

func (t *Transport) peerDownHandler() func(raft.ServerAddress) {
	t.peerDownMu.Lock()
	defer t.peerDownMu.Unlock()
	return t.peerDownFn
}

// SetPeerUpHandler installs fn, called with a peer's address each time a
// peer the failure detector held down answers again. fn runs on the
// detector's goroutine and must not block. Nil removes it.
func (t *Transport) SetPeerUpHandler(fn func(peer raft.ServerAddress)) {
	t.peerDownMu.Lock()
	defer t.peerDownMu.Unlock()
	t.peerUpFn = fn
}

func (t *Transport) peerUpHandler() func(raft.ServerAddress) {
	t.peerDownMu.Lock()
	defer t.peerDownMu.Unlock()
	return t.peerUpFn
}

// WatchPeer makes the Mux's failure detector watch the peer at addr
// (Mux.WatchPeer).
func (t *Transport) WatchPeer(addr raft.ServerAddress) { t.m.WatchPeer(addr) }

// PeerDown reports whether the Mux's failure detector holds the peer at
// addr down (Mux.PeerDown).
func (t *Transport) PeerDown(addr raft.ServerAddress) bool { return t.m.PeerDown(addr) }

// ElectNow hands this group's raft a TimeoutNow request, as a leader
// transferring leadership sends one, through Consumer and behind the RPCs
// already queued: raft then starts an election at once, without a
// pre-vote, and its vote requests carry the leadership-transfer flag, so
// voters that still believe in a leader vote all the same. Raft obeys
// TimeoutNow in any state, a leader's included (it steps down): only the
// group may call this, when it knows it follows no live leader, and
// still, if not nil, is asked again just before raft is handed the
// request (after the RPCs queued ahead of it): false drops it. It
// returns once the request is queued; ErrClosed after Close.
func (t *Transport) ElectNow(still func() bool) error {
	req := &raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, Addr: []byte(t.m.cfg.Advertise)}}
	if !t.enqueue(inbound{typ: typeTimeoutNow, req: req, still: still}) {
		return ErrClosed
	}
	return nil
}

// AppendEntries sends args to target and waits for the response. Requests
// without entries use the control connection, others the bulk one; a
// heartbeat joins the peer's next batch (Config.HeartbeatBatchWindow,
// SetHeartbeatBatchWindow), or is answered from the last real answer
// (SetHeartbeatReuse).
func (t *Transport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	class := classBulk
	if len(args.Entries) == 0 {
		class = classControl
	}
	if !isHeartbeat(args) {
		return t.appendRetrying(target, class, args, resp)
	}
	if t.reusedHeartbeat(target, args, resp) {
		return nil
	}
	var err error
	if window := t.heartbeatBatchWindow(); window > 0 {
		err = t.heartbeatRPC(target, args, resp, window)
	} else {
		err = t.rpc(target, class, args, resp)
	}
	t.noteRealHeartbeat(target, args, resp, err)
	return err
}

// RequestVote sends args to target and waits for the response.
func (t *Transport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.voteRetrying(target, args, resp, func() { *resp = raft.RequestVoteResponse{} })
}

// RequestPreVote sends args to target and waits for the response.
func (t *Transport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.voteRetrying(target, args, resp, func() { *resp = raft.RequestPreVoteResponse{} })
}

// TimeoutNow sends args to target and waits for the response.
func (t *Transport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.rpc(target, classControl, args, resp)
}

// AppendEntriesPipeline returns a pipeline of AppendEntries to target on
// the peer's bulk connection, with up to Config.MaxInFlight requests
// outstanding. It returns raft.ErrPipelineReplicationNotSupported when
// MaxInFlight is 1.
func (t *Transport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	if t.m.cfg.MaxInFlight < 2 {
		return nil, raft.ErrPipelineReplicationNotSupported
	}
	if err := t.ctx.Err(); err != nil {
		return nil, ErrClosed
	}
	p, err := t.m.peer(target)
	if err != nil {
		return nil, err
	}
	c, err := p.conn(classBulk)
	if err != nil {
		return nil, err
	}
	return newPipeline(t, c, target), nil
}

// InstallSnapshot streams args.Size bytes of data to target on a
// connection of its own, after the request, and waits for the response.
// It is given Config.Timeout per SnapshotTimeoutScale bytes.
func (t *Transport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	return t.installSnapshot(target, args, resp, data)
}

// rpc sends req to target on the connection of class and waits for resp.
func (t *Transport) rpc(target raft.ServerAddress, class connClass, req, resp any) error {
	typ := requestType(req)
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	p, err := t.m.peer(target)
	if err != nil {
		return err
	}
	c, err := p.conn(class)
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	id := c.send(&call{typ: typ, resp: resp, done: func(err error) { ch <- err }}, t.group, req)
	return t.awaitCall(c, id, ch, typ, target)
}

// awaitCall waits for call id on c, whose done sends to ch, for Timeout.
func (t *Transport) awaitCall(c *clientConn, id uint64, ch chan error, typ byte, target raft.ServerAddress) error {
	timer := time.NewTimer(t.m.cfg.Timeout)
	defer timer.Stop()
	select {
	case err := <-ch:
		return err
	case <-timer.C:
		c.timedOut(id, fmt.Sprintf("rpc type %d of group %q to %s", typ, t.group, target))
	case <-t.ctx.Done():
		c.cancel(id, ErrClosed)
	}
	// Whoever removed the call has filled resp or failed it: wait for that
	// so resp is not written after return.
	return <-ch
}

// goFunc runs f on a goroutine counted by both the Mux and this transport,
// unless either is closed.
func (t *Transport) goFunc(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	if !t.m.goFunc(func() { defer t.wg.Done(); f() }) {
		t.wg.Done()
		return false
	}
	return true
}

// enqueue queues an incoming RPC for raft and starts the drain goroutine
// if none runs, and reports whether it queued it. A full queue or a
// closed group answers at once.
func (t *Transport) enqueue(in inbound) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		in.respondError(fmt.Errorf("%w: group %q", ErrClosed, t.group))
		return false
	}
	if len(t.queue) >= t.m.cfg.MaxQueuedPerGroup {
		t.mu.Unlock()
		in.respondError(fmt.Errorf("%w: %d rpcs queued for group %q", ErrGroupBusy, len(t.queue), t.group))
		return false
	}
	t.queue = append(t.queue, in)
	start := !t.draining
	t.draining = true
	t.mu.Unlock()
	if start && !t.goFunc(t.drain) {
		t.mu.Lock()
		t.draining = false
		t.mu.Unlock()
	}
	return true
}

// drain hands queued RPCs to raft one at a time, in order, and exits when
// the queue is empty or the group closes (answering what is left with
// ErrClosed).
func (t *Transport) drain() {
	for {
		t.mu.Lock()
		if len(t.queue) == 0 || t.ctx.Err() != nil {
			rest := t.queue
			t.queue = nil
			t.draining = false
			t.mu.Unlock()
			for _, in := range rest {
				in.respondError(fmt.Errorf("%w: group %q", ErrClosed, t.group))
			}
			return
		}
		in := t.queue[0]
		t.queue[0] = inbound{}
		t.queue = t.queue[1:]
		t.mu.Unlock()
		if in.still != nil && !in.still() {
			continue
		}
		resp, err := t.deliver(raft.RPC{Command: in.req}, t.m.cfg.Timeout, nil)
		t.noteHeartbeat(in.req, resp, err)
		if in.sc != nil {
			in.sc.respond(in.id, in.typ, resp, err)
		}
	}
}

// deliver hands rpc to raft through Consumer and waits for its answer,
// within timeout overall; each signal on extend (nil: none) moves the
// wait for the answer to at least Timeout from then (restore_wait.go).
func (t *Transport) deliver(rpc raft.RPC, timeout time.Duration, extend <-chan struct{}) (any, error) {
	respCh := make(chan raft.RPCResponse, 1)
	rpc.RespChan = respCh
	until := deadline(timeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case t.consumer <- rpc:
	case <-timer.C:
		return nil, fmt.Errorf("%w: raft of group %q took no rpc for %v", ErrGroupBusy, t.group, timeout)
	case <-t.ctx.Done():
		return nil, fmt.Errorf("%w: group %q", ErrClosed, t.group)
	}
	return t.await(respCh, timer, until, extend)
}

// await waits for raft's answer on respCh until timer fires, at until;
// each signal on extend (nil: none) moves that to at least Timeout from
// then.
func (t *Transport) await(respCh chan raft.RPCResponse, timer *time.Timer, until time.Time, extend <-chan struct{}) (any, error) {
	for {
		select {
		case r := <-respCh:
			return r.Response, r.Error
		case <-extend:
			if later := deadline(t.m.cfg.Timeout); later.After(until) {
				until = later
				timer.Reset(time.Until(until))
			}
		case <-timer.C:
			return nil, fmt.Errorf("%w: raft of group %q did not answer in time", ErrGroupBusy, t.group)
		case <-t.ctx.Done():
			return nil, fmt.Errorf("%w: group %q", ErrClosed, t.group)
		}
	}
}

// heartbeat runs the heartbeat fast path for an incoming heartbeat: fn
// runs on the caller (a connection reader) and, as raft answers before
// returning, the response is written at once; otherwise a goroutine waits.
func (t *Transport) heartbeat(fn func(raft.RPC), in inbound) {
	if resp, err, ok := t.heartbeatNow(fn, in); ok {
		in.sc.respond(in.id, in.typ, resp, err)
	}
}

// heartbeatNow runs fn on the heartbeat in and returns raft's answer if
// raft gave it before returning (ok); otherwise a goroutine waits for the
// answer and responds to in on its own.
func (t *Transport) heartbeatNow(fn func(raft.RPC), in inbound) (resp any, err error, ok bool) {
	respCh := make(chan raft.RPCResponse, 1)
	fn(raft.RPC{Command: in.req, RespChan: respCh})
	select {
	case r := <-respCh:
		t.noteHeartbeat(in.req, r.Response, r.Error)
		return r.Response, r.Error, true
	default:
	}
	if !t.goFunc(func() {
		timer := time.NewTimer(t.m.cfg.Timeout)
		defer timer.Stop()
		resp, err := t.await(respCh, timer, deadline(t.m.cfg.Timeout), nil)
		t.noteHeartbeat(in.req, resp, err)
		in.sc.respond(in.id, in.typ, resp, err)
	}) {
		return nil, fmt.Errorf("%w: group %q", ErrClosed, t.group), true
	}
	return nil, nil, false
}

// Close removes the group from the Mux, fails its waiting and queued RPCs
// with ErrClosed and waits for its goroutines. Other groups are not
// affected. It is safe to call more than once.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	t.m.removeGroup(t)
	t.wg.Wait()
	return nil
}

// isHeartbeat reports whether req is what raft sends as a heartbeat, by the
// rule of raft.NetworkTransport.
func isHeartbeat(req any) bool {
	r, ok := req.(*raft.AppendEntriesRequest)
	if !ok {
		return false
	}
	leader := r.RPCHeader.Addr
	if len(leader) == 0 {
		leader = r.Leader
	}
	return r.Term != 0 && leader != nil && r.PrevLogEntry == 0 && r.PrevLogTerm == 0 &&
		len(r.Entries) == 0 && r.LeaderCommitIndex == 0
}

// errString returns err's message, or "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
