package transport

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Heartbeat batching. raft sends each follower of each group a heartbeat
// every HeartbeatTimeout/10 to 2×that, so a node leading 333 of 1,000
// partitions of replication factor 3 sends about 4,400 heartbeats a second
// and receives as many. Sent one frame each, every heartbeat cost two
// writes and two reads (request and response) and the goroutine wake-ups
// around them; idle, that was most of a node's CPU.
//
// With Config.HeartbeatBatchWindow > 0 a heartbeat is registered as an
// ordinary call with its own id on the peer's control connection, but not
// written: it joins the connection's batch, and the first heartbeat of a
// batch arms a timer that writes every heartbeat queued by then as one
// typeHeartbeats frame. The receiver runs each heartbeat as before (raft's
// heartbeat handler on the reader, for a term raft accepted from this
// group; fastHeartbeat) and answers all those raft answered at once in one
// typeHeartbeats response frame. A heartbeat that cannot take the fast path
// (a new term, an unknown group answered with an error aside) is handed to
// its group's queue and answered later by an ordinary AppendEntries
// response frame carrying its own id, so it never holds up the others.
// Each caller still waits for its own call, with its own timeout.
//
//	request:   count:uv, then count times: id:uv item:bytes
//	           item = group:bytes AppendEntries-request-fields
//	response:  count:uv, then count times: id:uv item:bytes
//	           item = error:bytes AppendEntries-response-fields
//	(the frame's own id is 0; each item names its call)
//
// A follower still hears from its leader's raft, per group, at raft's own
// rate: batching delays a heartbeat by at most the window and never
// answers one that raft did not.

// typeHeartbeats is the frame type of a batch of heartbeats; its response
// is typeHeartbeats|responseBit.
const typeHeartbeats byte = 0x10

// heartbeatItem is one heartbeat waiting in a connection's batch: its call
// id and its encoded item (group and request fields).
type heartbeatItem struct {
	id   uint64
	item []byte
}

// SetHeartbeatBatchWindow lets this group's heartbeats wait up to window
// (instead of Config.HeartbeatBatchWindow) for others to the same peer;
// the batch is written at the earliest deadline of the heartbeats in it,
// so a group with a short window is not held up by one with a long one.
// It has no effect when Config.HeartbeatBatchWindow is 0 (no batching);
// window must be under Config.Timeout. Partition groups, whose raft
// heartbeats a follower every second or two against a 10 s timeout, use
// a long window: fewer frames, and fewer wake-ups of the node's threads.
func (t *Transport) SetHeartbeatBatchWindow(window time.Duration) {
	t.batchWindow.Store(int64(min(window, t.m.cfg.Timeout/2)))
}

// heartbeatBatchWindow is how long this group's heartbeats may wait in a
// batch; 0 sends each in a frame of its own.
func (t *Transport) heartbeatBatchWindow() time.Duration {
	if t.m.cfg.HeartbeatBatchWindow <= 0 {
		return 0
	}
	if w := time.Duration(t.batchWindow.Load()); w > 0 {
		return w
	}
	return t.m.cfg.HeartbeatBatchWindow
}

// heartbeatRPC sends the heartbeat req to target in the peer's next batch
// and waits for resp, as rpc does.
func (t *Transport) heartbeatRPC(target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse, window time.Duration) error {
	if t.ctx.Err() != nil {
		return ErrClosed
	}
	p, err := t.m.peer(target)
	if err != nil {
		return err
	}
	c, err := p.conn(classControl)
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	id := c.queueHeartbeat(&call{typ: typeAppendEntries, resp: resp, done: func(err error) { ch <- err }}, t.group, req, window)
	return t.awaitCall(c, id, ch, typeAppendEntries, target)
}

// queueHeartbeat registers cl, adds its request to the batch, to be
// written within window, and returns its id; cl.done is called exactly
// once, possibly before queueHeartbeat returns (then the id is 0).
func (c *clientConn) queueHeartbeat(cl *call, group string, req *raft.AppendEntriesRequest, window time.Duration) uint64 {
	var e encoder
	e.cur = make([]byte, 0, 64+len(group)+len(req.ID)+len(req.Addr)+len(req.Leader))
	e.str(group)
	if err := encodeRequest(&e, req); err != nil {
		cl.done(err)
		return 0
	}
	if len(e.bufs) != 0 {
		// Only an entry's Data is referenced rather than copied, and a
		// heartbeat has no entries.
		cl.done(fmt.Errorf("transport: heartbeat of group %q does not fit one buffer", group))
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

	c.heartbeatMu.Lock()
	c.heartbeats = append(c.heartbeats, heartbeatItem{id: id, item: e.cur})
	if due := time.Now().Add(window); len(c.heartbeats) == 1 || due.Before(c.heartbeatDue) {
		c.heartbeatDue = due
		if c.heartbeatTimer == nil {
			c.heartbeatTimer = time.AfterFunc(window, c.flushHeartbeats)
		} else {
			// A flush already due writes what it finds and the reset
			// timer then finds less or nothing: no heartbeat waits past
			// its own deadline.
			c.heartbeatTimer.Reset(window)
		}
	}
	c.heartbeatMu.Unlock()
	return id
}

// flushHeartbeats writes the heartbeats queued so far as one frame. A
// failed write breaks the connection, which fails their calls.
func (c *clientConn) flushHeartbeats() {
	c.heartbeatMu.Lock()
	items := c.heartbeats
	c.heartbeats = nil
	c.heartbeatDue = time.Time{}
	c.heartbeatMu.Unlock()
	if len(items) == 0 {
		return
	}
	bufs, err := encodeItems(typeHeartbeats, items, c.m.cfg.MaxFrameSize)
	if err != nil {
		c.fail(err)
		return
	}
	if err := c.write(bufs); err != nil {
		c.fail(err)
	}
}

// encodeItems builds a frame of type typ (id 0) of items.
func encodeItems(typ byte, items []heartbeatItem, maxFrame int) ([][]byte, error) {
	size := 16
	for _, it := range items {
		size += 20 + len(it.item)
	}
	var e encoder
	e.begin(typ, 0)
	e.grow(size)
	e.u64(uint64(len(items)))
	for _, it := range items {
		e.u64(it.id)
		e.u64(uint64(len(it.item)))
		e.cur = append(e.cur, it.item...)
	}
	bufs, _, err := e.finish(maxFrame)
	return bufs, err
}

// decodeItems splits the payload of a typeHeartbeats frame into its items;
// each item's bytes alias the payload.
func decodeItems(payload []byte) ([]heartbeatItem, error) {
	d := decoder{b: payload}
	n := d.u64()
	// Each item takes at least 2 bytes (id and length); check before
	// allocating.
	if n > uint64(len(d.b))/2 {
		d.fail("heartbeat count past end of frame")
	}
	if d.err != nil {
		return nil, d.err
	}
	items := make([]heartbeatItem, n)
	for i := range items {
		items[i].id = d.u64()
		items[i].item = d.bytes()
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return items, nil
}

// completeHeartbeats completes the calls answered in a typeHeartbeats
// response frame. A malformed frame is returned as an error (the
// connection is then broken, failing the rest).
func (c *clientConn) completeHeartbeats(f frame) error {
	items, err := decodeItems(f.payload)
	if err != nil {
		return err
	}
	for _, it := range items {
		c.mu.Lock()
		cl := c.pending[it.id]
		delete(c.pending, it.id)
		c.mu.Unlock()
		if cl == nil {
			continue // its caller gave up
		}
		if cl.typ != typeAppendEntries {
			err := fmt.Errorf("%w: heartbeat answer for call %d of type %d", ErrMalformed, it.id, cl.typ)
			cl.done(err)
			return err
		}
		d := decoder{b: it.item}
		remoteErr := d.str()
		if d.err == nil {
			d.err = decodeResponse(&d, typeAppendEntries, cl.resp)
		}
		if d.err != nil {
			cl.done(d.err)
			return d.err
		}
		if remoteErr != "" {
			cl.done(fmt.Errorf("%s", remoteErr))
			continue
		}
		cl.done(nil)
	}
	return nil
}

// heartbeats serves a typeHeartbeats frame: each heartbeat raft answers at
// once is answered in one response frame; any other is answered on its own
// later (see the comment at the top of this file). A malformed frame is
// returned as an error and closes the connection.
func (sc *serverConn) heartbeats(f frame) error {
	items, err := decodeItems(f.payload)
	if err != nil {
		return err
	}
	answers := make([]heartbeatItem, 0, len(items))
	for _, it := range items {
		d := decoder{b: it.item}
		group := d.str()
		if d.err != nil {
			return d.err
		}
		req, err := decodeRequest(&d, typeAppendEntries)
		if err != nil {
			return err
		}
		in := inbound{sc: sc, id: it.id, typ: typeAppendEntries, req: req}
		t := sc.m.group(group)
		if t == nil {
			answers = append(answers, heartbeatItem{id: it.id, item: encodeAnswer(nil, fmt.Errorf("%w: no group %q on node %s", ErrClosed, group, sc.m.cfg.Advertise))})
			continue
		}
		fn := t.heartbeatHandler()
		if fn == nil || !isHeartbeat(req) || !t.fastHeartbeat(req) {
			t.enqueue(in)
			continue
		}
		if resp, err, ok := t.heartbeatNow(fn, in); ok {
			answers = append(answers, heartbeatItem{id: it.id, item: encodeAnswer(resp, err)})
		}
	}
	if len(answers) == 0 {
		return nil
	}
	bufs, err := encodeItems(typeHeartbeats|responseBit, answers, sc.m.cfg.MaxFrameSize)
	if err != nil {
		sc.m.logger.Error("encode heartbeat answers", zap.Error(err))
		sc.conn.Close()
		return nil
	}
	sc.write(bufs)
	return nil
}

// encodeAnswer encodes one heartbeat's answer as a response item.
func encodeAnswer(resp any, rpcErr error) []byte {
	var e encoder
	e.cur = make([]byte, 0, 32)
	e.str(errString(rpcErr))
	// Never fails for typeAppendEntries: resp is nil or raft's response.
	_ = encodeResponse(&e, typeAppendEntries, resp)
	return e.cur
}
