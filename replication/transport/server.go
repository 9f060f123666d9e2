package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// serverConn is the receiving side of one connection from a peer. Its
// serve goroutine reads requests and routes them by group; responses are
// written whole under writeMu by whichever goroutine has raft's answer.
type serverConn struct {
	m    *Mux
	conn net.Conn
	r    *bufio.Reader

	writeMu sync.Mutex
}

func newServerConn(m *Mux, conn net.Conn) *serverConn {
	return &serverConn{m: m, conn: conn, r: bufio.NewReaderSize(conn, readBufferSize)}
}

// serve reads requests until the connection closes or sends a malformed
// frame. A panic is recovered and closes only this connection.
func (sc *serverConn) serve() {
	logger := sc.m.logger.With(zap.String("remote", sc.conn.RemoteAddr().String()))
	defer sc.m.untrack(sc.conn)
	defer func() {
		if v := recover(); v != nil {
			logger.Error("panic serving connection", zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
		}
	}()
	sc.conn.SetReadDeadline(deadline(sc.m.cfg.Timeout))
	var p [prefaceSize]byte
	if _, err := io.ReadFull(sc.r, p[:]); err != nil {
		logger.Debug("connection closed before preface", zap.Error(err))
		return
	}
	if err := checkPreface(p[:]); err != nil {
		logger.Warn("connection refused", zap.Error(err))
		return
	}
	sc.conn.SetReadDeadline(time.Time{})
	for {
		b, err := readFrame(sc.r, sc.m.cfg.MaxFrameSize)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				logger.Debug("connection closed", zap.Error(err))
			}
			return
		}
		f, err := parseFrame(b)
		if err != nil {
			logger.Warn("malformed frame, closing connection", zap.Error(err))
			return
		}
		if f.typ == typeHeartbeats {
			if err := sc.heartbeats(f); err != nil {
				logger.Warn("malformed heartbeats, closing connection", zap.Error(err))
				return
			}
			continue
		}
		group, req, err := decodeRequestFrame(f)
		if err != nil {
			logger.Warn("malformed request, closing connection", zap.Error(err))
			return
		}
		in := inbound{sc: sc, id: f.id, typ: f.typ, req: req}
		if f.typ == typePing {
			sc.respond(in.id, in.typ, nil, nil)
			continue
		}
		t := sc.m.group(group)
		if t == nil {
			sc.respondError(in.id, in.typ, fmt.Errorf("%w: %s%q on node %s", ErrClosed, noGroupText, group, sc.m.cfg.Advertise))
			if f.typ == typeInstallSnapshot {
				return // the snapshot bytes that follow are not read
			}
			continue
		}
		if f.typ == typeReadLog {
			t.readLog(in)
			continue
		}
		if f.typ == typeLeaving {
			t.leaving(in)
			continue
		}
		if f.typ == typeInstallSnapshot {
			// A snapshot has its connection to itself: the bytes that
			// follow are read by raft right here, then the sender closes.
			sc.installSnapshot(t, in)
			return
		}
		if isHeartbeat(req) && t.fastHeartbeat(req) {
			if fn := t.heartbeatHandler(); fn != nil {
				t.heartbeat(fn, in)
				continue
			}
		}
		t.enqueue(in)
	}
}

// installSnapshot hands an InstallSnapshot with the connection's following
// bytes as its Reader to raft and answers.
func (sc *serverConn) installSnapshot(t *Transport, in inbound) {
	req := in.req.(*raft.InstallSnapshotRequest)
	timeout := snapshotTimeout(sc.m.cfg, req.Size)
	sc.conn.SetReadDeadline(deadline(timeout))
	resp, err := t.deliver(raft.RPC{Command: req, Reader: io.LimitReader(sc.r, req.Size)}, timeout, t.restoreReads())
	sc.respond(in.id, in.typ, resp, err)
}

// respondError answers request id with err alone.
func (sc *serverConn) respondError(id uint64, typ byte, err error) {
	sc.respond(id, typ, nil, err)
}

// respond writes the response to request id. A write that fails closes the
// connection; the peer's reader then fails its calls.
func (sc *serverConn) respond(id uint64, typ byte, resp any, rpcErr error) {
	var e encoder
	e.begin(typ|responseBit, id)
	e.str(errString(rpcErr))
	if err := encodeResponse(&e, typ, resp); err != nil {
		sc.m.logger.Error("encode response", zap.Error(err))
		sc.conn.Close()
		return
	}
	bufs, _, err := e.finish(sc.m.cfg.MaxFrameSize)
	if err != nil {
		sc.m.logger.Error("encode response", zap.Error(err))
		sc.conn.Close()
		return
	}
	sc.write(bufs)
}

// write writes one frame whole; a write that fails closes the connection.
func (sc *serverConn) write(bufs net.Buffers) {
	sc.writeMu.Lock()
	defer sc.writeMu.Unlock()
	sc.conn.SetWriteDeadline(deadline(sc.m.cfg.Timeout))
	if _, err := bufs.WriteTo(sc.conn); err != nil {
		sc.conn.Close()
	}
}

// snapshotTimeout is Timeout per SnapshotTimeoutScale bytes of a snapshot
// of size bytes, at least one Timeout.
func snapshotTimeout(cfg Config, size int64) time.Duration {
	n := size / cfg.SnapshotTimeoutScale
	if n < 1 {
		n = 1
	}
	if n > int64(time.Duration(1<<62)/cfg.Timeout) {
		return time.Duration(1 << 62)
	}
	return cfg.Timeout * time.Duration(n)
}
