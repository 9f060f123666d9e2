package transport

import (
	"fmt"
	"math"

	"github.com/hashicorp/raft"
)

// typeReadLog asks a peer for the committed batches of a group's log: a
// replica catching up after a snapshot install fetches what it misses
// from the leader's segments, as a Kafka follower fetches.
const typeReadLog byte = 7

// LogChunk is a ReadLog answer.
type LogChunk struct {
	// LogStart is the answering replica's log start offset: a request
	// below it gets no batches, and the asker's log restarts there.
	LogStart int64
	// End is the offset after the last batch the replica may serve (its
	// high watermark): everything below it is committed.
	End int64
	// Batches are whole stored batches, verbatim, from the batch holding
	// the requested offset; empty at End or below LogStart. The first
	// batch may exceed the byte limit on its own.
	Batches []byte
}

// LogReader answers a group's ReadLog requests: whole committed batches
// from offset from, up to maxBytes (the first batch whole even when
// larger). asker is the advertised Raft address of the node asking. It
// runs on a goroutine of the group's transport; an error is sent to the
// asker as its message.
type LogReader func(asker raft.ServerAddress, from int64, maxBytes int) (LogChunk, error)

// readLogRequest and readLogResponse are the bodies of a ReadLog.
//
//	request:   asker:bytes from:uv max-bytes:uv
//	response:  log-start:uv end:uv batches:bytes
type (
	readLogRequest struct {
		Asker    raft.ServerAddress
		From     int64
		MaxBytes int
	}
	readLogResponse struct{ Chunk LogChunk }
)

// SetLogReader installs fn as the answer to ReadLog requests for this
// group; nil removes it, and requests are then answered with an error.
func (t *Transport) SetLogReader(fn LogReader) {
	t.logReaderMu.Lock()
	defer t.logReaderMu.Unlock()
	t.logReaderFn = fn
}

func (t *Transport) logReader() LogReader {
	t.logReaderMu.Lock()
	defer t.logReaderMu.Unlock()
	return t.logReaderFn
}

// ReadLog asks target for the group's committed batches from offset from,
// up to maxBytes, on the peer's bulk connection, and waits (within
// Config.Timeout) for the answer. maxBytes must leave room in a frame:
// at most Config.MaxFrameSize/2. The returned Batches alias a buffer of
// their own, which the caller may keep.
func (t *Transport) ReadLog(target raft.ServerAddress, from int64, maxBytes int) (LogChunk, error) {
	if from < 0 || maxBytes < 1 || maxBytes > t.m.cfg.MaxFrameSize/2 {
		return LogChunk{}, fmt.Errorf("transport: read log of group %q from %d up to %d bytes: out of range (at most %d bytes)", t.group, from, maxBytes, t.m.cfg.MaxFrameSize/2)
	}
	var resp readLogResponse
	if err := t.rpc(target, classBulk, &readLogRequest{Asker: t.m.cfg.Advertise, From: from, MaxBytes: maxBytes}, &resp); err != nil {
		return LogChunk{}, fmt.Errorf("transport: read log of group %q from %s at %d: %w", t.group, target, from, err)
	}
	t.noteRestoreRead()
	return resp.Chunk, nil
}

// readLog answers an incoming ReadLog on a goroutine of the group (a read
// may touch the disk: the connection's reader must not wait for it).
func (t *Transport) readLog(in inbound) {
	fn := t.logReader()
	if fn == nil {
		in.sc.respondError(in.id, in.typ, fmt.Errorf("transport: group %q on node %s serves no log reads", t.group, t.m.cfg.Advertise))
		return
	}
	req := in.req.(*readLogRequest)
	// The answer must fit a frame whatever the asker asked for.
	maxBytes := min(req.MaxBytes, t.m.cfg.MaxFrameSize/2)
	// The asker's restore is alive: its snapshot install may wait on,
	// from the request and again from the answer (a read may be slow).
	t.extendSnapshotOut(req.Asker)
	if !t.goFunc(func() {
		chunk, err := fn(req.Asker, req.From, maxBytes)
		in.sc.respond(in.id, in.typ, &readLogResponse{Chunk: chunk}, err)
		t.extendSnapshotOut(req.Asker)
	}) {
		in.sc.respondError(in.id, in.typ, fmt.Errorf("%w: group %q", ErrClosed, t.group))
	}
}

func encodeReadLogRequest(e *encoder, r *readLogRequest) {
	e.str(string(r.Asker))
	e.u64(uint64(r.From))
	e.u64(uint64(r.MaxBytes))
}

func decodeReadLogRequest(d *decoder) *readLogRequest {
	asker := raft.ServerAddress(d.str())
	from, maxBytes := d.u64(), d.u64()
	if from > math.MaxInt64 || maxBytes > math.MaxInt32 {
		d.fail("read log offset or size out of range")
	}
	return &readLogRequest{Asker: asker, From: int64(from), MaxBytes: int(maxBytes)}
}

func encodeReadLogResponse(e *encoder, r *readLogResponse) {
	if r == nil {
		r = &readLogResponse{}
	}
	e.u64(uint64(max(r.Chunk.LogStart, 0)))
	e.u64(uint64(max(r.Chunk.End, 0)))
	e.bytes(r.Chunk.Batches)
}

func decodeReadLogResponse(d *decoder, r *readLogResponse) error {
	start, end := d.u64(), d.u64()
	if start > math.MaxInt64 || end > math.MaxInt64 {
		d.fail("read log offsets out of range")
	}
	r.Chunk = LogChunk{LogStart: int64(start), End: int64(end), Batches: d.bytes()}
	return d.end()
}
