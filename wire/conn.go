package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup/share"
	"github.com/sluice-io/sluice/replication/quota"
)

// conn is one client connection. One goroutine reads and handles requests
// in order; one writes responses in the same order. The queue between them
// holds at most Config.MaxInFlight requests.
type conn struct {
	s      *Server
	nc     net.Conn
	logger *zap.Logger

	// ctx ends when the connection dies or the server gives up on
	// shutdown; handlers' waits use it.
	ctx    context.Context
	cancel context.CancelFunc

	queue chan *inflight
	// throttleUntil (unix nanoseconds) is when a client throttled by its
	// quotas may be read from again (KIP-219: the broker answers at once
	// and mutes the connection); 0 when not throttled.
	throttleUntil atomic.Int64
	// host is the client's address as Kafka reports it ("/127.0.0.1").
	host string

	// Used only by writeLoop: responseSize is the size of the last
	// response, the guess for the next one's buffer; pieces and held are
	// reused to write fetch responses around their record bytes.
	responseSize int
	pieces       net.Buffers
	held         [][]byte

	// shareMu guards shareSessions: the share sessions opened on this
	// connection, closed (their records released) when it closes.
	shareMu       sync.Mutex
	shareSessions map[share.SessionKey]struct{}
}

// trackShareSession notes a share session opened on c.
func (c *conn) trackShareSession(key share.SessionKey) {
	c.shareMu.Lock()
	defer c.shareMu.Unlock()
	if c.shareSessions == nil {
		c.shareSessions = make(map[share.SessionKey]struct{})
	}
	c.shareSessions[key] = struct{}{}
}

// closeShareSessions closes the share sessions c opened that no other
// connection reopened, releasing their members' acquired records, so
// other members get them without waiting for the locks to expire.
func (c *conn) closeShareSessions() {
	c.shareMu.Lock()
	keys := c.shareSessions
	c.shareSessions = nil
	c.shareMu.Unlock()
	if len(keys) == 0 || c.s.shares == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, shareReleaseTimeout)
	defer cancel()
	for key := range keys {
		if parts, ok := c.s.shares.Sessions().CloseOwned(key, c); ok {
			c.s.releaseShare(ctx, key.Group, key.Member, parts)
		}
	}
}

type requestClientKey struct{}

// requestClient is who sent the request a handler is answering.
type requestClient struct {
	id, host string
	// user is the principal quotas apply to (quota.Anonymous until
	// connections authenticate).
	user string
	// conn is the connection, for throttling it; nil in tests that call
	// handlers directly.
	conn *conn
}

// mute stops reading the client's connection for d (a quota throttle).
func (rc requestClient) mute(d time.Duration) {
	if rc.conn != nil {
		rc.conn.mute(d)
	}
}

// mute makes the reader wait d before reading the next request.
func (c *conn) mute(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		old := c.throttleUntil.Load()
		if old >= until || c.throttleUntil.CompareAndSwap(old, until) {
			return
		}
	}
}

// waitThrottle waits until the connection is no longer muted, or ctx ends.
func (c *conn) waitThrottle(ctx context.Context) error {
	until := c.throttleUntil.Load()
	if until == 0 {
		return nil
	}
	d := time.Until(time.Unix(0, until))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// withRequestClient returns ctx carrying the request's client id and host.
func withRequestClient(ctx context.Context, c *conn, clientID *string, host string) context.Context {
	rc := requestClient{host: host, user: quota.Anonymous, conn: c}
	if clientID != nil {
		rc.id = *clientID
	}
	return context.WithValue(ctx, requestClientKey{}, rc)
}

// requestClientFrom returns what withRequestClient stored.
func requestClientFrom(ctx context.Context) requestClient {
	rc, _ := ctx.Value(requestClientKey{}).(requestClient)
	return rc
}

// inflight is a request read and handled, waiting for its response to be
// written.
type inflight struct {
	header requestHeader
	// version is the response's version: the request's, or 0 for an
	// ApiVersions request of a version we do not serve.
	version int16
	// flexibleHeader selects response header v1.
	flexibleHeader bool
	reply          reply
	// frame is the request's pooled frame, which the decoded request
	// points into; nil when it was copied out of the pool (keepsFrame).
	// It goes back to the pool once the response is written.
	frame []byte
	// throttle is how long the client's quotas throttle it after this
	// request (reported in the response's throttle_time_ms).
	throttle time.Duration
	// charge is what reading the request took from the server's memory
	// budget; it is given back with the frame. frameSize is the frame's
	// size as read (the budget keeps small frames apart).
	charge    int64
	frameSize int
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{
		s:      s,
		nc:     nc,
		logger: s.logger.With(zap.String("remote", nc.RemoteAddr().String())),
		ctx:    ctx,
		cancel: cancel,
		queue:  make(chan *inflight, s.cfg.MaxInFlight),
		host:   "/" + remoteIP(nc.RemoteAddr()),
	}
}

// stopReading makes the reader stop at its next read; responses already
// queued are still written.
func (c *conn) stopReading() {
	c.nc.SetReadDeadline(time.Now())
}

// readLoop reads, decodes and handles requests until the connection fails,
// the client closes it, or a request is malformed.
func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer close(c.queue)
	defer func() {
		if r := recover(); r != nil {
			c.logger.Error("panic handling request; closing connection", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			c.cancel()
			c.nc.Close()
		}
	}()
	frames := &frameReader{r: c.nc, max: c.s.cfg.MaxRequestBytes, pool: c.s.buffers, budget: c.s.budget}
	// A wait for memory ends with the connection or when shutdown starts.
	readCtx, cancelRead := context.WithCancel(c.ctx)
	defer cancelRead()
	defer context.AfterFunc(c.s.drain, cancelRead)()
	for {
		// A client over its quota is not read from until its throttle
		// time has passed.
		if err := c.waitThrottle(readCtx); err != nil {
			c.readFailed(err)
			return
		}
		frame, charge, err := frames.next(readCtx)
		if err != nil {
			c.readFailed(err)
			return
		}
		size := len(frame)
		in, err := c.handle(frame)
		if err != nil {
			c.s.budget.releaseFrame(size, charge)
			c.logger.Info("closing connection after bad request", zap.Error(err))
			c.cancel()
			return
		}
		in.charge, in.frameSize = charge, size
		select {
		case c.queue <- in:
		case <-c.ctx.Done():
			c.done(in)
			return
		}
		if in.reply.closeConn {
			return
		}
	}
}

// readFailed logs why reading stopped, when it is worth an operator's
// attention.
func (c *conn) readFailed(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.Canceled):
		// client closed, or shutdown stopped reading (or a wait for memory)
	case errors.Is(err, errFrameTooLarge):
		c.logger.Warn("closing connection: request frame too large", zap.Error(err))
		c.cancel()
	default:
		c.logger.Debug("read failed", zap.Error(err))
		c.cancel()
	}
}

// handle decodes one pooled frame and runs its handler. It takes the
// frame: the inflight keeps it (or a copy, and the frame goes back to the
// pool at once); on error it goes back to the pool.
func (c *conn) handle(frame []byte) (*inflight, error) {
	if len(frame) >= 2 && !keepsFrame(int16(binary.BigEndian.Uint16(frame))) {
		// The handler may keep pieces of the request: decode a copy.
		owned := bytes.Clone(frame)
		c.s.buffers.put(frame)
		return c.decode(owned)
	}
	in, err := c.decode(frame)
	if err != nil {
		c.s.buffers.put(frame)
		return nil, err
	}
	in.frame = frame
	return in, nil
}

// decode parses a frame's header and request and runs its handler.
func (c *conn) decode(frame []byte) (*inflight, error) {
	h, rest, err := parseHeader(frame)
	if err != nil {
		return nil, err
	}
	a := lookupAPI(h.key)
	if !c.s.serves(a) {
		return nil, fmt.Errorf("api key %d is not supported", h.key)
	}
	if h.version < a.minVersion || h.version > a.maxVersion {
		if h.key == apiVersionsKey {
			// KIP-511: answer with v0 and our versions, so the client can
			// retry with one we support.
			return &inflight{header: h, version: 0, reply: reply{resp: unsupportedAPIVersions()}}, nil
		}
		return nil, fmt.Errorf("%s version %d is outside the supported %d-%d", kmsg.NameForKey(h.key), h.version, a.minVersion, a.maxVersion)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	flexible := req.IsFlexible()
	if flexible {
		if rest, err = skipTags(rest); err != nil {
			return nil, err
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(h.key), h.version, err)
	}
	start := time.Now()
	r := a.handle(c.s, withRequestClient(c.ctx, c, h.clientID, c.host), req)
	in := &inflight{header: h, version: h.version, flexibleHeader: flexible && h.key != apiVersionsKey, reply: r}
	in.throttle = c.chargeQuotas(h, req, start)
	return in, nil
}

// writeLoop writes responses in request order, waiting for deferred ones.
func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	defer c.s.forgetConn(c)
	defer c.closeShareSessions()
	defer c.nc.Close()
	defer c.cancel()
	defer func() {
		if r := recover(); r != nil {
			c.logger.Error("panic writing response; closing connection", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			for range c.queue {
			}
		}
	}()
	failed := false
	for in := range c.queue {
		if failed {
			c.done(in)
			continue // drain so the reader never blocks
		}
		resp := in.reply.resp
		if in.reply.finish != nil {
			resp = in.reply.finish(c.ctx)
		}
		if in.reply.closeConn {
			failed = true
			c.cancel()
			c.done(in)
			continue
		}
		if in.reply.none || resp == nil {
			c.done(in)
			continue
		}
		resp.SetVersion(in.version)
		if in.throttle > 0 {
			setThrottle(resp, in.throttle)
		}
		if err := c.write(in, resp); err != nil {
			c.logger.Debug("write failed", zap.Error(err))
			failed = true
			c.cancel()
		}
		c.done(in)
	}
}

// write encodes and writes one response frame. A fetch response is
// written around its record bytes (fetch_response.go); any other is
// encoded into a pooled buffer.
func (c *conn) write(in *inflight, resp kmsg.Response) error {
	if fr, ok := resp.(*kmsg.FetchResponse); ok {
		return c.writeFetch(in, fr)
	}
	buf := c.s.buffers.get(max(c.responseSize, 1<<minBufferClass))
	buf = appendResponseHeader(buf[:0], in.header.correlationID, in.flexibleHeader)
	buf = resp.AppendTo(buf)
	finishFrame(buf)
	c.responseSize = len(buf)
	_, err := c.nc.Write(buf)
	c.s.buffers.put(buf)
	return err
}

// done returns what a request borrowed from the buffer pool, once its
// response is written or will never be.
func (c *conn) done(in *inflight) {
	if in.reply.release != nil {
		in.reply.release()
	}
	c.s.buffers.put(in.frame)
	in.frame = nil
	c.s.budget.releaseFrame(in.frameSize, in.charge)
	in.charge = 0
}

// remoteIP returns the IP of addr without its port.
func remoteIP(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// chargeQuotas charges a handled request to its client's quotas
// (producer_byte_rate for Produce's record bytes, request_percentage for
// the time its handler took), mutes the connection for the throttle time
// and returns it; zero when no quota applies or the client is within them.
func (c *conn) chargeQuotas(h requestHeader, req kmsg.Request, start time.Time) time.Duration {
	set := c.s.cluster.ClientQuotas()
	if len(set) == 0 {
		return 0
	}
	now := time.Now()
	client := ""
	if h.clientID != nil {
		client = *h.clientID
	}
	var d time.Duration
	if p, ok := req.(*kmsg.ProduceRequest); ok {
		d = c.s.quotas.record(set, quota.Anonymous, client, quota.ProducerByteRate, quotaProduce, float64(produceBytes(p)), now)
	}
	if !requestQuotaExempt(h.key) {
		// Percent of one thread: handler seconds x 100 per second.
		used := now.Sub(start).Seconds() * 100
		d = max(d, c.s.quotas.record(set, quota.Anonymous, client, quota.RequestPercentage, quotaRequest, used, now))
	}
	if d > 0 {
		c.mute(d)
	}
	return d
}

// setThrottle reports d in resp's throttle_time_ms, if it has one, keeping
// a longer throttle already set.
func setThrottle(resp kmsg.Response, d time.Duration) {
	t, ok := resp.(interface {
		kmsg.ThrottleResponse
		kmsg.SetThrottleResponse
	})
	if !ok {
		return
	}
	if ms, _ := t.Throttle(); ms < throttleMillis(d) {
		t.SetThrottle(throttleMillis(d))
	}
}
