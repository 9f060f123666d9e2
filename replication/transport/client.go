package transport

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// connClass names one of a peer's long-lived connections.
type connClass int

const (
	// classControl carries heartbeats, empty AppendEntries, votes,
	// pre-votes and TimeoutNow: small frames that must not wait behind a
	// large AppendEntries.
	classControl connClass = iota
	// classBulk carries AppendEntries with entries, pipelined or not.
	classBulk
	numClasses
)

// readBufferSize is the bufio buffer of every connection's reader.
const readBufferSize = 64 << 10

// peer is the client side of one peer node: its two long-lived
// connections and the semaphore of its snapshot streams.
type peer struct {
	m    *Mux
	addr raft.ServerAddress

	// snapshots holds a token per running InstallSnapshot stream.
	snapshots chan struct{}

	// mu guards conns, dialErr and retryAt; it is held while dialling, so
	// callers of one class wait for one dial rather than each dialling.
	mu      sync.Mutex
	conns   [numClasses]*clientConn
	dialErr [numClasses]error
	retryAt [numClasses]time.Time

	// liveness is the failure detector's view of the peer (liveness.go).
	liveness
	// up wakes AppendEntries waiting for the peer to come back
	// (append_retry.go).
	up upSignal
}

func newPeer(m *Mux, addr raft.ServerAddress) *peer {
	p := &peer{m: m, addr: addr, snapshots: make(chan struct{}, m.cfg.MaxSnapshotStreams)}
	// A new peer gets a full PeerFailureTimeout before it can be
	// declared down.
	p.lastHeard.Store(time.Now().UnixNano())
	return p
}

// conn returns the live connection of class, dialling it if there is none
// or it broke. Within RedialBackoff of a failed dial it returns that
// dial's error without dialling.
func (p *peer) conn(class connClass) (*clientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[class]; c != nil && c.alive() {
		return c, nil
	}
	if time.Now().Before(p.retryAt[class]) {
		return nil, p.dialErr[class]
	}
	conn, err := p.m.dialPeer(p.addr)
	if err != nil {
		p.dialErr[class], p.retryAt[class] = err, time.Now().Add(p.m.cfg.RedialBackoff)
		p.noteDialError(err)
		return nil, err
	}
	c := &clientConn{m: p.m, peer: p, conn: conn, pending: make(map[uint64]*call)}
	c.lastRead.Store(time.Now().UnixNano())
	if !p.m.goFunc(c.readLoop) {
		p.m.untrack(conn)
		return nil, ErrClosed
	}
	p.conns[class] = c
	if class == classControl {
		p.control.Store(c)
		if p.generation.Add(1) > 1 {
			// A reconnection: tell the groups, as for a peer back up.
			p.m.goFunc(func() { p.m.peerUp(p.addr) })
		}
	}
	p.m.logger.Debug("peer connected", zap.String("peer", string(p.addr)), zap.Int("class", int(class)))
	return c, nil
}

// call is one request waiting for its response on a clientConn.
type call struct {
	typ  byte
	resp any
	// done is called exactly once, by whoever removes the call from
	// pending (or by send when it never got there), after resp is filled
	// in or with the error. It must not block.
	done func(err error)
}

// clientConn is one long-lived multiplexed connection to a peer. Many
// goroutines send on it (each frame written whole under writeMu); one
// goroutine, readLoop, reads responses and completes calls by id.
type clientConn struct {
	m    *Mux
	peer *peer
	conn net.Conn

	// lastRead is the UnixNano time of the last frame read, to tell a dead
	// link from a slow group when a call times out.
	lastRead atomic.Int64

	// writeMu serialises frames on the connection.
	writeMu sync.Mutex

	// mu guards the fields below.
	mu      sync.Mutex
	pending map[uint64]*call
	nextID  uint64
	err     error // set once the connection broke; no call is added then
	probing bool  // a ping is in flight

	// heartbeatMu guards heartbeats, the batch not yet written (see
	// heartbeat_batch.go); a timer armed by its first item writes it.
	heartbeatMu sync.Mutex
	heartbeats  []heartbeatItem
	// heartbeatTimer writes the batch at heartbeatDue, the earliest
	// deadline of the heartbeats in it (each waits at most its group's
	// window); nil until the first batch.
	heartbeatTimer *time.Timer
	heartbeatDue   time.Time
}

// alive reports whether the connection has not broken.
func (c *clientConn) alive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err == nil
}

// send registers cl, writes its request and returns its id. cl.done is
// called exactly once, possibly before send returns (then the id is 0).
func (c *clientConn) send(cl *call, group string, req any) uint64 {
	var e encoder
	e.begin(cl.typ, 0)
	e.str(group)
	if err := encodeRequest(&e, req); err != nil {
		cl.done(err)
		return 0
	}
	bufs, _, err := e.finish(c.m.cfg.MaxFrameSize)
	if err != nil {
		cl.done(err)
		return 0
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		cl.done(err)
		return 0
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = cl
	c.mu.Unlock()
	binary.BigEndian.PutUint64(bufs[0][5:13], id)
	if err := c.write(bufs); err != nil {
		c.fail(err)
	}
	return id
}

// write writes one frame whole, within Timeout.
func (c *clientConn) write(bufs net.Buffers) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.conn.SetWriteDeadline(deadline(c.m.cfg.Timeout))
	_, err := bufs.WriteTo(c.conn)
	return err
}

// cancel completes the call id with err if it is still pending.
func (c *clientConn) cancel(id uint64, err error) {
	c.mu.Lock()
	cl := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if cl != nil {
		cl.done(err)
	}
}

// timedOut cancels call id with ErrTimeout and, when nothing at all has
// been read on the connection for a Timeout, probes it with a ping: a
// connection that does not answer that within a Timeout is declared dead,
// so the next RPC re-dials. A slow group alone does not condemn it.
func (c *clientConn) timedOut(id uint64, what string) {
	c.cancel(id, fmt.Errorf("%w: %s after %v", ErrTimeout, what, c.m.cfg.Timeout))
	if time.Since(time.Unix(0, c.lastRead.Load())) > c.m.cfg.Timeout {
		c.probe()
	}
}

// probe sends a ping unless one is in flight; no answer within Timeout
// breaks the connection.
func (c *clientConn) probe() {
	c.mu.Lock()
	if c.probing || c.err != nil {
		c.mu.Unlock()
		return
	}
	c.probing = true
	c.mu.Unlock()
	var timer *time.Timer
	var timerMu sync.Mutex
	id := c.send(&call{typ: typePing, resp: &pingResponse{}, done: func(err error) {
		timerMu.Lock()
		if timer != nil {
			timer.Stop()
		}
		timerMu.Unlock()
		c.mu.Lock()
		c.probing = false
		c.mu.Unlock()
		if err != nil {
			c.fail(fmt.Errorf("no answer to a ping from %s within %v: %w", c.conn.RemoteAddr(), c.m.cfg.Timeout, err))
		}
	}}, "", &pingRequest{})
	if id == 0 {
		return
	}
	timerMu.Lock()
	timer = time.AfterFunc(c.m.cfg.Timeout, func() { c.cancel(id, ErrTimeout) })
	timerMu.Unlock()
}

// fail breaks the connection: it is closed and every pending call fails
// with err.
func (c *clientConn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = &brokenConnError{addr: c.conn.RemoteAddr().String(), err: err}
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	c.m.untrack(c.conn)
	for _, cl := range pending {
		cl.done(c.err)
	}
}

// readLoop reads responses until the connection breaks.
func (c *clientConn) readLoop() {
	r := bufio.NewReaderSize(c.conn, readBufferSize)
	for read := false; ; read = true {
		b, err := readFrame(r, c.m.cfg.MaxFrameSize)
		if err != nil {
			if !read && closedByPeer(err) {
				// Ended by the other side before answering anything: as
				// a refused dial (a proxy on the link reached nothing).
				c.peer.noteRefused()
			}
			c.fail(err)
			return
		}
		now := time.Now().UnixNano()
		c.lastRead.Store(now)
		c.peer.lastHeard.Store(now)
		f, err := parseFrame(b)
		if err != nil {
			c.fail(err)
			return
		}
		if f.typ == typeHeartbeats|responseBit {
			if err := c.completeHeartbeats(f); err != nil {
				c.fail(err)
				return
			}
			continue
		}
		c.mu.Lock()
		cl := c.pending[f.id]
		delete(c.pending, f.id)
		c.mu.Unlock()
		if cl == nil {
			continue // its caller gave up
		}
		if f.typ != cl.typ|responseBit {
			err := fmt.Errorf("%w: response type %#x to request type %d", ErrMalformed, f.typ, cl.typ)
			cl.done(err)
			c.fail(err)
			return
		}
		remoteErr, err := decodeResponseFrame(f, cl.resp)
		if err != nil {
			cl.done(err)
			c.fail(err)
			return
		}
		if remoteErr != "" {
			cl.done(remoteError(remoteErr))
			continue
		}
		cl.done(nil)
	}
}

// readFrame reads one frame and returns the bytes after its length field.
// It checks the length against maxFrame before allocating.
func readFrame(r io.Reader, maxFrame int) ([]byte, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if uint64(n) > uint64(maxFrame) {
		return nil, fmt.Errorf("%w: peer announced %d bytes, limit %d (raise MaxFrameSize on this node)", ErrFrameTooLarge, n, maxFrame)
	}
	if n < frameHeaderSize-4 {
		return nil, fmt.Errorf("%w: frame of %d bytes is shorter than its header", ErrMalformed, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// deadline returns now plus d.
func deadline(d time.Duration) time.Time { return time.Now().Add(d) }
