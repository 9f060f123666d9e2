package transport

import (
	"errors"
	"sync"

	"github.com/hashicorp/raft"
)

// Leaving. A replica that leaves its group while its node runs on (its
// storage failed) is not seen by the failure detector, which judges
// nodes: its followers would wait for raft's heartbeat timeout (10 s or
// more) to replace a leader that stopped. Before it shuts its raft down,
// such a leader tells its peers (AnnounceLeaving); each peer's group is
// handed the leaver's address (SetLeaderLeftHandler) and treats it as the
// failure detector's verdict on that node, for that group alone
// (raftgroup's failover). It starts nothing itself, so a stray or late
// announcement costs at most one election, as a wrong verdict of the
// detector would.
//
//	request:   group:bytes from:bytes      (from: the leaver's advertised address)
//	response:  error:bytes                 (empty body)

// typeLeaving tells a peer that this node's replica of the group left it.
const typeLeaving byte = 8

// leavingRequest and leavingResponse are the bodies of a Leaving.
type (
	leavingRequest  struct{ From raft.ServerAddress }
	leavingResponse struct{}
)

// SetLeaderLeftHandler installs fn, called without blocking with the
// address of a peer whose replica of this group announced it left the
// group; nil ignores announcements.
func (t *Transport) SetLeaderLeftHandler(fn func(raft.ServerAddress)) {
	t.peerDownMu.Lock()
	defer t.peerDownMu.Unlock()
	t.leftFn = fn
}

// leaderLeftHandler returns the handler SetLeaderLeftHandler installed.
func (t *Transport) leaderLeftHandler() func(raft.ServerAddress) {
	t.peerDownMu.Lock()
	defer t.peerDownMu.Unlock()
	return t.leftFn
}

// AnnounceLeaving tells each of peers, at once and on their control
// connections, that this node's replica leaves the group, and waits for
// their answers (each within Config.Timeout). It returns the errors of
// the peers that did not take it (no such group there, unreachable).
func (t *Transport) AnnounceLeaving(peers []raft.ServerAddress) error {
	var wg sync.WaitGroup
	errs := make([]error, len(peers))
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = t.rpc(p, classControl, &leavingRequest{From: t.m.cfg.Advertise}, &leavingResponse{})
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// leaving answers an incoming Leaving: it hands the leaver to the group's
// handler and answers at once.
func (t *Transport) leaving(in inbound) {
	if fn := t.leaderLeftHandler(); fn != nil {
		fn(in.req.(*leavingRequest).From)
	}
	in.sc.respond(in.id, in.typ, &leavingResponse{}, nil)
}
