package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

var (
	// ErrClosed is returned by Serve after Close, and by RPCs on a closed
	// Mux or Transport.
	ErrClosed = errors.New("transport: closed")

	// ErrGroupExists is returned by Mux.Transport for a group that already
	// has an open Transport on this Mux.
	ErrGroupExists = errors.New("transport: group already has a transport")

	// ErrTimeout is returned (wrapped) by an RPC that got no response
	// within Config.Timeout.
	ErrTimeout = errors.New("transport: rpc timed out")

	// ErrGroupBusy is the error a node answers when a group's queue of
	// incoming RPCs is full or its raft does not take an RPC within
	// Config.Timeout.
	ErrGroupBusy = errors.New("transport: group busy")
)

// Mux carries the Raft RPCs of every group on a node: one listener, and per
// peer one control and one bulk connection dialled lazily and re-dialled
// after failure, plus up to MaxSnapshotStreams short-lived snapshot
// connections. Each group gets its own raft.Transport from Transport.
//
// A Mux is safe for concurrent use. Close stops every goroutine it started
// and waits for them.
type Mux struct {
	cfg         Config
	dialAddress func(raft.ServerAddress) string
	dial        func(ctx context.Context, address string) (net.Conn, error)
	logger      *zap.Logger

	// ctx is cancelled by Close; every blocking wait selects on it.
	ctx    context.Context
	cancel context.CancelFunc

	// wg counts every goroutine the Mux started (goFunc); running is the
	// same count, readable (by tests).
	wg      sync.WaitGroup
	running atomic.Int64

	// mu guards the fields below. It is taken last (after peer.mu,
	// pipeline.mu or Transport.mu; see doc.go) and nothing is locked or
	// called while it is held.
	mu        sync.RWMutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	groups    map[string]*Transport
	peers     map[raft.ServerAddress]*peer
}

// New returns a Mux for cfg. It listens on nothing until Serve.
func New(cfg Config, opts Options) (*Mux, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Mux{
		cfg:         cfg,
		dialAddress: opts.DialAddress,
		dial:        opts.Dial,
		logger:      opts.Logger,
		listeners:   make(map[net.Listener]struct{}),
		conns:       make(map[net.Conn]struct{}),
		groups:      make(map[string]*Transport),
		peers:       make(map[raft.ServerAddress]*peer),
	}
	if m.dialAddress == nil {
		m.dialAddress = func(a raft.ServerAddress) string { return string(a) }
	}
	if m.dial == nil {
		var d net.Dialer
		m.dial = func(ctx context.Context, address string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", address)
		}
	}
	if m.logger == nil {
		m.logger = zap.NewNop()
	}
	m.logger = m.logger.Named("transport").With(zap.String("node", string(cfg.Advertise)))
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if cfg.PeerFailureTimeout > 0 {
		m.goFunc(m.detect)
	}
	return m, nil
}

// Addr returns Config.Advertise.
func (m *Mux) Addr() raft.ServerAddress { return m.cfg.Advertise }

// Serve accepts connections from peers on l until Close, and returns
// ErrClosed then; any other accept error is returned as is. It closes l.
// Serve may be called for several listeners.
func (m *Mux) Serve(l net.Listener) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		l.Close()
		return ErrClosed
	}
	m.listeners[l] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.listeners, l)
		m.mu.Unlock()
		l.Close()
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			if m.ctx.Err() != nil {
				return ErrClosed
			}
			return fmt.Errorf("transport: accept on %s: %w", l.Addr(), err)
		}
		if !m.track(conn) {
			return ErrClosed
		}
		sc := newServerConn(m, conn)
		if !m.goFunc(sc.serve) {
			m.untrack(conn)
			return ErrClosed
		}
	}
}

// Transport returns the raft.Transport of group, registered until its Close.
// RPCs it sends carry group; RPCs arriving for group go to its Consumer. It
// fails with ErrGroupExists if group is open already and ErrClosed after
// Close.
func (m *Mux) Transport(group string) (*Transport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if _, ok := m.groups[group]; ok {
		return nil, fmt.Errorf("%w: %q", ErrGroupExists, group)
	}
	t := newTransport(m, group)
	m.groups[group] = t
	return t, nil
}

// group returns the open transport of a group, or nil.
func (m *Mux) group(name string) *Transport {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.groups[name]
}

// removeGroup forgets t if it is still the transport of its group.
func (m *Mux) removeGroup(t *Transport) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.groups[t.group] == t {
		delete(m.groups, t.group)
	}
}

// Close closes the listeners, every connection and every group transport,
// and returns once every goroutine the Mux started has exited. It is safe
// to call more than once.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.closed = true
	m.cancel()
	for l := range m.listeners {
		l.Close()
	}
	for c := range m.conns {
		c.Close()
	}
	groups := make([]*Transport, 0, len(m.groups))
	for _, t := range m.groups {
		groups = append(groups, t)
	}
	m.mu.Unlock()
	for _, t := range groups {
		t.Close()
	}
	m.wg.Wait()
	m.logger.Info("mux closed")
	return nil
}

// goFunc runs f on a goroutine counted in m.wg, unless the Mux is closed.
// A read lock suffices: Close sets closed under the write lock before it
// waits, so no Add can follow the Wait.
func (m *Mux) goFunc(f func()) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	m.running.Add(1)
	go func() {
		defer m.wg.Done()
		defer m.running.Add(-1)
		f()
	}()
	return true
}

// track registers a connection for Close to close; it closes c and fails
// when the Mux is closed.
func (m *Mux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		c.Close()
		return false
	}
	m.conns[c] = struct{}{}
	return true
}

// untrack closes c and forgets it.
func (m *Mux) untrack(c net.Conn) {
	c.Close()
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

// peer returns the state of the peer at addr, creating it.
func (m *Mux) peer(addr raft.ServerAddress) (*peer, error) {
	m.mu.RLock()
	p, closed := m.peers[addr], m.closed
	m.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if p != nil {
		return p, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	p = m.peers[addr]
	if p == nil {
		p = newPeer(m, addr)
		m.peers[addr] = p
	}
	return p, nil
}

// dialPeer dials the peer at addr through DialAddress and writes the
// preface; the returned connection is tracked.
func (m *Mux) dialPeer(addr raft.ServerAddress) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.Timeout)
	defer cancel()
	address := m.dialAddress(addr)
	conn, err := m.dial(ctx, address)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s (for %s): %w", address, addr, err)
	}
	if !m.track(conn) {
		return nil, ErrClosed
	}
	conn.SetWriteDeadline(deadline(m.cfg.Timeout))
	if _, err := conn.Write(preface()); err != nil {
		m.untrack(conn)
		return nil, fmt.Errorf("transport: write preface to %s (for %s): %w", address, addr, err)
	}
	return conn, nil
}
