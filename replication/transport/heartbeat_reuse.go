package transport

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Heartbeat reuse. raft's leader sends each follower a heartbeat every
// HeartbeatTimeout/10 to /5 and uses the answer for two things only: the
// follower's last contact (its leader lease: it steps down when a
// majority has not answered for LeaderLeaseTimeout) and the votes of
// VerifyLeader. A group that opts in (SetHeartbeatReuse, as partition
// groups do with a third of their 10 s heartbeat timeout) has a
// heartbeat answered from the last real answer of that follower instead
// of being sent, while all of these hold:
//
//   - the last real heartbeat to that follower was answered Success, in
//     the request's own term, less than the reuse window ago;
//   - the failure detector heard from the follower's node within half of
//     PeerFailureTimeout (its connections carry frames: it is alive), on
//     the same control connection as that answer (a new one may reach a
//     restarted process).
//
// So a follower still gets a real heartbeat at least every window plus
// one heartbeat interval (5 s at 10 s timeouts: half its own timeout),
// and a leader cut off from a follower stops counting it within half of
// PeerFailureTimeout, then its lease runs as before. What it gives up:
// within a window, a follower that has moved on to a later term (another
// leader) still counts for the old leader's lease and VerifyLeader. raft
// already counts any answer to a heartbeat, Success or not, as contact;
// Sluice never calls VerifyLeader on a partition group (its reads go
// through the leader's applied state and Raft commits), and a deposed
// leader learns the later term from its next append or idle
// AppendEntries (CommitTimeout) anyway. With the detector off
// (PeerFailureTimeout 0) nothing is reused.

// Idle AppendEntries reuse. Besides heartbeats, raft's leader sends each
// follower an AppendEntries with no entries every CommitTimeout to
// 2×CommitTimeout on the pipeline, to tell it the commit index; idle, it
// is the same request each time (same term, previous entry and commit
// index), and as many frames as the heartbeats once those are batched.
// Its answer is used for the same things a heartbeat's is (the term,
// last contact, VerifyLeader; an AppendEntries without entries moves no
// follower index). So in a group that opts in (SetIdleAppendReuse), a
// pipelined AppendEntries without entries is answered from that
// follower's last real answer to one when it was a Success, that request
// had the same term, previous entry and commit index, the answer is less
// than the group's maximum age old, and the detector heard from the
// follower's node recently on the connection of that answer, as for
// heartbeats. The follower then learns nothing it did not know. What a
// reused answer could hide (a follower that moved on to a later term)
// the heartbeats still reveal as before: they are sent as they would be
// without it (or reused within their own window).

// heartbeatReuse is a group's cache of real heartbeat answers and of real
// answers to idle AppendEntries, by follower address.
type heartbeatReuse struct {
	mu     sync.Mutex
	window time.Duration
	last   map[raft.ServerAddress]reusedAnswer
	// idleMaxAge is how long a real answer to an idle AppendEntries may
	// stand in for identical ones; 0: never.
	idleMaxAge time.Duration
	lastIdle   map[raft.ServerAddress]reusedIdleAppend
}

// reusedIdleAppend is a follower's last real answer to an idle
// AppendEntries and the request it answered.
type reusedIdleAppend struct {
	reusedAnswer
	prevEntry, prevTerm, commit uint64
}

// reusedAnswer is a follower's last real heartbeat answer.
type reusedAnswer struct {
	at         time.Time
	generation uint64
	resp       raft.AppendEntriesResponse
}

// SetHeartbeatReuse lets heartbeats of this group be answered from the
// follower's last real answer for up to window (see heartbeat_reuse.go);
// 0, the default, sends every one. Call it before the group runs.
func (t *Transport) SetHeartbeatReuse(window time.Duration) {
	t.reuse.mu.Lock()
	defer t.reuse.mu.Unlock()
	t.reuse.window = window
	if t.reuse.last == nil {
		t.reuse.last = make(map[raft.ServerAddress]reusedAnswer)
	}
}

// SetIdleAppendReuse lets a pipelined AppendEntries without entries of
// this group be answered from the follower's last real answer to an
// identical one for up to maxAge (see heartbeat_reuse.go); 0, the
// default, sends every one. The answer says nothing a heartbeat in
// between would not contradict, so maxAge only bounds how long a mistake
// could last. Call it before the group runs.
func (t *Transport) SetIdleAppendReuse(maxAge time.Duration) {
	t.reuse.mu.Lock()
	defer t.reuse.mu.Unlock()
	t.reuse.idleMaxAge = maxAge
	if t.reuse.lastIdle == nil {
		t.reuse.lastIdle = make(map[raft.ServerAddress]reusedIdleAppend)
	}
}

// reusedIdleAppend fills resp from target's last real answer to an idle
// AppendEntries identical to req and reports whether it may stand in for
// req; req has no entries.
func (t *Transport) reusedIdleAppend(target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) bool {
	t.reuse.mu.Lock()
	maxAge := t.reuse.idleMaxAge
	a, ok := t.reuse.lastIdle[target]
	t.reuse.mu.Unlock()
	if maxAge <= 0 || !ok || a.resp.Term != req.Term || a.prevEntry != req.PrevLogEntry ||
		a.prevTerm != req.PrevLogTerm || a.commit != req.LeaderCommitIndex || time.Since(a.at) >= maxAge {
		return false
	}
	if gen, ok := t.m.heardWithin(target, t.m.cfg.PeerFailureTimeout/2); !ok || gen != a.generation {
		return false
	}
	*resp = a.resp
	return true
}

// noteRealIdleAppend records the answer to a real AppendEntries without
// entries: a Success of its own term may be reused for identical
// requests, anything else ends reuse for target.
func (t *Transport) noteRealIdleAppend(target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse, err error) {
	t.reuse.mu.Lock()
	defer t.reuse.mu.Unlock()
	if t.reuse.idleMaxAge <= 0 {
		return
	}
	if err != nil || !resp.Success || resp.Term != req.Term {
		delete(t.reuse.lastIdle, target)
		return
	}
	gen, ok := t.m.heardWithin(target, t.m.cfg.PeerFailureTimeout/2)
	if !ok {
		delete(t.reuse.lastIdle, target)
		return
	}
	t.reuse.lastIdle[target] = reusedIdleAppend{
		reusedAnswer: reusedAnswer{at: time.Now(), generation: gen, resp: *resp},
		prevEntry:    req.PrevLogEntry, prevTerm: req.PrevLogTerm, commit: req.LeaderCommitIndex,
	}
}

// reusedHeartbeat fills resp from target's last real answer to a
// heartbeat of req's term and reports whether it may stand in for req.
func (t *Transport) reusedHeartbeat(target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) bool {
	t.reuse.mu.Lock()
	window := t.reuse.window
	a, ok := t.reuse.last[target]
	t.reuse.mu.Unlock()
	if window <= 0 || !ok || a.resp.Term != req.Term || time.Since(a.at) >= window {
		return false
	}
	if gen, ok := t.m.heardWithin(target, t.m.cfg.PeerFailureTimeout/2); !ok || gen != a.generation {
		return false
	}
	*resp = a.resp
	return true
}

// noteRealHeartbeat records the answer to a real heartbeat: a Success of
// its own term may be reused, anything else ends reuse for target.
func (t *Transport) noteRealHeartbeat(target raft.ServerAddress, req *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse, err error) {
	t.reuse.mu.Lock()
	defer t.reuse.mu.Unlock()
	if t.reuse.window <= 0 {
		return
	}
	if err != nil || !resp.Success || resp.Term != req.Term {
		delete(t.reuse.last, target)
		return
	}
	gen, ok := t.m.heardWithin(target, t.m.cfg.PeerFailureTimeout/2)
	if !ok {
		delete(t.reuse.last, target)
		return
	}
	t.reuse.last[target] = reusedAnswer{at: time.Now(), generation: gen, resp: *resp}
}

// heardWithin reports whether the failure detector read a frame from the
// peer at addr within d (false for a peer it does not watch, or with the
// detector off), and the generation of its control connection.
func (m *Mux) heardWithin(addr raft.ServerAddress, d time.Duration) (generation uint64, ok bool) {
	if m.cfg.PeerFailureTimeout == 0 {
		return 0, false
	}
	m.mu.RLock()
	p := m.peers[addr]
	m.mu.RUnlock()
	if p == nil || p.down.Load() || time.Since(time.Unix(0, p.lastHeard.Load())) >= d {
		return 0, false
	}
	return p.generation.Load(), true
}
