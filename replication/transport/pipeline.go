package transport

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// pipeline is a raft.AppendPipeline on a peer's bulk connection. It owns
// no goroutine of its own: the connection's reader completes futures, and
// they are handed to raft in send order through done, a channel with room
// for every request in flight; only if raft is slow to read it does a
// short-lived goroutine (owned by the group's Transport) feed it from
// overflow.
type pipeline struct {
	t      *Transport
	c      *clientConn
	target raft.ServerAddress

	// slots holds a token per request in flight (MaxInFlight).
	slots chan struct{}
	done  chan raft.AppendFuture

	closeOnce sync.Once
	closed    chan struct{}

	// mu guards the fields below.
	mu       sync.Mutex
	inflight []*appendFuture // sent, in send order, not yet handed over
	overflow []*appendFuture // completed, waiting for room in done
	feeding  bool            // a feed goroutine runs
}

var _ raft.AppendPipeline = (*pipeline)(nil)

func newPipeline(t *Transport, c *clientConn, target raft.ServerAddress) *pipeline {
	n := t.m.cfg.MaxInFlight
	return &pipeline{
		t:      t,
		c:      c,
		target: target,
		slots:  make(chan struct{}, n),
		done:   make(chan raft.AppendFuture, n),
		closed: make(chan struct{}),
	}
}

// AppendEntries sends args and returns its future at once; it blocks while
// MaxInFlight requests are outstanding.
func (p *pipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	if !p.c.alive() {
		return nil, fmt.Errorf("transport: pipeline of group %q: connection to peer broke", p.t.group)
	}
	select {
	case p.slots <- struct{}{}:
	case <-p.closed:
		return nil, raft.ErrPipelineShutdown
	case <-p.t.ctx.Done():
		return nil, ErrClosed
	}
	f := &appendFuture{start: time.Now(), args: args, resp: resp, ready: make(chan struct{})}
	p.mu.Lock()
	p.inflight = append(p.inflight, f)
	p.mu.Unlock()
	idle := len(args.Entries) == 0
	if idle && p.t.reusedIdleAppend(p.target, args, resp) {
		// Answered as the identical request before it was (see
		// heartbeat_reuse.go); handed to raft in order, behind any
		// request still in flight.
		close(f.ready)
		<-p.slots
		p.completed()
		return f, nil
	}
	var once sync.Once
	id := p.c.send(&call{typ: typeAppendEntries, resp: resp, done: func(err error) {
		once.Do(func() {
			if idle {
				p.t.noteRealIdleAppend(p.target, args, resp, err)
			}
			f.timerMu.Lock()
			if f.timer != nil {
				f.timer.Stop()
			}
			f.err = err
			close(f.ready)
			f.timerMu.Unlock()
			<-p.slots
			p.completed()
		})
	}}, p.t.group, args)
	if id != 0 {
		f.timerMu.Lock()
		select {
		case <-f.ready:
		default:
			f.timer = time.AfterFunc(p.t.m.cfg.Timeout, func() {
				p.c.timedOut(id, fmt.Sprintf("pipelined append entries of group %q", p.t.group))
			})
		}
		f.timerMu.Unlock()
	}
	return f, nil
}

// completed moves futures that are done from the head of inflight to raft.
func (p *pipeline) completed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.inflight) > 0 {
		f := p.inflight[0]
		select {
		case <-f.ready:
		default:
			return
		}
		p.inflight[0] = nil
		p.inflight = p.inflight[1:]
		if len(p.overflow) == 0 {
			select {
			case p.done <- f:
				continue
			default:
			}
		}
		p.overflow = append(p.overflow, f)
		if !p.feeding && p.t.goFunc(p.feed) {
			p.feeding = true
		}
	}
}

// feed moves overflow into done as raft reads it, then exits.
func (p *pipeline) feed() {
	for {
		p.mu.Lock()
		if len(p.overflow) == 0 {
			p.feeding = false
			p.mu.Unlock()
			return
		}
		f := p.overflow[0]
		p.mu.Unlock()
		select {
		case p.done <- f:
		case <-p.closed:
			p.mu.Lock()
			p.feeding = false
			p.mu.Unlock()
			return
		case <-p.t.ctx.Done():
			p.mu.Lock()
			p.feeding = false
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		p.overflow[0] = nil
		p.overflow = p.overflow[1:]
		p.mu.Unlock()
	}
}

// Consumer returns the futures in the order their requests were sent.
func (p *pipeline) Consumer() <-chan raft.AppendFuture { return p.done }

// Close stops the pipeline; requests in flight still complete but are no
// longer handed to raft once done is full. The shared connection stays
// open.
func (p *pipeline) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	return nil
}

// appendFuture is a raft.AppendFuture of a pipelined request.
type appendFuture struct {
	start time.Time
	args  *raft.AppendEntriesRequest
	resp  *raft.AppendEntriesResponse
	ready chan struct{}
	err   error // set before ready closes

	timerMu sync.Mutex // orders setting timer against its Stop in done
	timer   *time.Timer
}

// Error waits for the response and returns the RPC's error.
func (f *appendFuture) Error() error {
	<-f.ready
	return f.err
}

// Start returns when the request was sent.
func (f *appendFuture) Start() time.Time { return f.start }

// Request returns the request.
func (f *appendFuture) Request() *raft.AppendEntriesRequest { return f.args }

// Response returns the response; valid once Error returned nil.
func (f *appendFuture) Response() *raft.AppendEntriesResponse { return f.resp }
