package transport

import (
	"errors"
	"io"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Peer liveness. A partition's Raft group runs with a long heartbeat
// timeout (seconds) so that idle groups cost little; what replaces a dead
// leader quickly is this node-level failure detector, one per Mux, shared
// by every group:
//
//   - A watched peer (WatchPeer; every peer this node has sent an RPC to
//     is watched too) is alive while frames come back from it on this
//     node's connections to it. Heartbeat answers usually suffice; the
//     detector pings the peer's control connection (answered by the
//     peer's reader itself, not by a group) whenever nothing was read for
//     PeerFailureTimeout/5, and re-dials a broken one.
//   - A peer is declared down when nothing was read from it for
//     PeerFailureTimeout, or at once when a dial to it is refused after
//     the last frame read (nothing listens at its address: a killed
//     process), or a connection to it ends, closed or reset by the
//     other side, before a frame was read on it (a proxy on the link
//     accepts the dial and then finds nothing listening behind it).
//   - On each alive-to-down transition every group's peer-down handler
//     (SetPeerDownHandler) is called, on the detector's goroutine; it must
//     not block. A peer is up again at the first frame read from it, and
//     every group's peer-up handler (SetPeerUpHandler) is called, as it is
//     when a control connection to the peer is dialled again (the peer
//     may have restarted faster than it could be declared down): a
//     leader then heartbeats it at once, so a restarted follower learns
//     its leader without waiting a heartbeat interval or raft's heartbeat
//     backoff.
//
// The detector never answers anything on a peer's behalf: it only tells
// groups that a peer stopped answering. What a group does with that (an
// election when that peer leads it) is the group's decision
// (replication/raftgroup/failover.go); a wrong verdict (a slow but live
// peer) costs at most an unneeded election, never safety, as any Raft
// election.

// liveness is the detector's state of one peer.
type liveness struct {
	// lastHeard is the UnixNano time a frame was last read from the peer
	// on any of this node's connections to it (its creation time before
	// the first).
	lastHeard atomic.Int64
	// refusedAt is the UnixNano time a dial to the peer was last refused,
	// 0 if never.
	refusedAt atomic.Int64
	// down is the detector's verdict; only the detector goroutine
	// writes it.
	down atomic.Bool
	// dialling is set while a detector goroutine dials the peer's control
	// connection.
	dialling atomic.Bool
	// control is the peer's latest control connection, readable without
	// peer.mu (which a dial holds).
	control atomic.Pointer[clientConn]
	// generation counts the control connections dialled to the peer: a
	// new one may reach a restarted process, which no earlier answer
	// speaks for (heartbeat_reuse.go).
	generation atomic.Uint64
}

// noteDialError records a refused dial: the peer is then down at the
// detector's next check.
func (l *liveness) noteDialError(err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		l.noteRefused()
	}
}

// noteRefused records that the peer refused a connection just now: down
// at the detector's next check unless a frame is read from it first.
func (l *liveness) noteRefused() { l.refusedAt.Store(time.Now().UnixNano()) }

// closedByPeer reports whether a read error is the other side ending the
// connection (not this node closing it).
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// WatchPeer makes the failure detector watch the peer at addr from now on
// (a group calls it for its leader; a peer this node sends RPCs to is
// watched anyway). Watching this node's own address does nothing.
func (m *Mux) WatchPeer(addr raft.ServerAddress) {
	if addr == "" || addr == m.cfg.Advertise || m.cfg.PeerFailureTimeout == 0 {
		return
	}
	_, _ = m.peer(addr)
}

// PeerDown reports whether the failure detector holds the peer at addr
// down (false for a peer it does not watch, or with the detector off).
func (m *Mux) PeerDown(addr raft.ServerAddress) bool {
	m.mu.RLock()
	p := m.peers[addr]
	m.mu.RUnlock()
	return p != nil && p.down.Load()
}

// detect is the failure detector's goroutine: every PeerFailureTimeout/5
// it checks each watched peer, until the Mux closes.
func (m *Mux) detect() {
	interval := m.cfg.PeerFailureTimeout / 5
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var peers []*peer
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-ticker.C:
		}
		peers = peers[:0]
		m.mu.RLock()
		for _, p := range m.peers {
			peers = append(peers, p)
		}
		m.mu.RUnlock()
		now := time.Now()
		for _, p := range peers {
			m.checkPeer(p, now, interval)
		}
	}
}

// checkPeer pings or re-dials p as needed and moves its verdict.
func (m *Mux) checkPeer(p *peer, now time.Time, interval time.Duration) {
	heard := p.lastHeard.Load()
	silent := now.Sub(time.Unix(0, heard))
	if c := p.control.Load(); c != nil && c.alive() {
		if silent >= interval {
			c.probe()
		}
	} else if p.dialling.CompareAndSwap(false, true) {
		// A dial may take up to Timeout (a black-holed address): never on
		// this goroutine.
		if !m.goFunc(func() {
			defer p.dialling.Store(false)
			_, _ = p.conn(classControl)
		}) {
			p.dialling.Store(false)
		}
	}
	dead := silent >= m.cfg.PeerFailureTimeout || p.refusedAt.Load() > heard
	switch {
	case dead && !p.down.Load():
		p.down.Store(true)
		m.logger.Info("peer down", zap.String("peer", string(p.addr)), zap.Duration("silent", silent))
		m.peerDown(p.addr)
	case !dead && p.down.Load():
		p.down.Store(false)
		m.logger.Info("peer up", zap.String("peer", string(p.addr)))
		m.peerUp(p.addr)
	}
}

// peerUp wakes the AppendEntries waiting for addr (append_retry.go) and
// calls every group's peer-up handler with addr.
func (m *Mux) peerUp(addr raft.ServerAddress) {
	m.mu.RLock()
	p := m.peers[addr]
	groups := make([]*Transport, 0, len(m.groups))
	for _, t := range m.groups {
		groups = append(groups, t)
	}
	m.mu.RUnlock()
	if p != nil {
		p.up.fire() // not under m.mu, which is taken last (doc.go)
	}
	for _, t := range groups {
		if fn := t.peerUpHandler(); fn != nil {
			fn(addr)
		}
	}
}

// peerDown calls every group's peer-down handler with addr.
func (m *Mux) peerDown(addr raft.ServerAddress) {
	m.mu.RLock()
	groups := make([]*Transport, 0, len(m.groups))
	for _, t := range m.groups {
		groups = append(groups, t)
	}
	m.mu.RUnlock()
	for _, t := range groups {
		if fn := t.peerDownHandler(); fn != nil {
			fn(addr)
		}
	}
}
