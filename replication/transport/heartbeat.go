package transport

import (
	"github.com/hashicorp/raft"
)

// The heartbeat fast path runs raft's heartbeat handler on the control
// connection's reader, so it must return at once: while it runs, the
// heartbeats of every other group from that peer wait behind it. raft's
// handler returns at once except when the heartbeat changes the follower's
// term or state (a new leader's first heartbeat, or one that turns a
// candidate into a follower): then it persists the term in the group's
// stable store, an fsync. Under an election burst (a topic of 1,000
// partitions created at once, a node restarting) those fsyncs queued on
// the reader delayed the other groups' heartbeats past their timeouts,
// which started more elections, which persisted more terms: a storm that
// did not settle.
//
// So only a heartbeat of a term raft already accepted from a heartbeat of
// this group takes the fast path; any other goes through the group's queue
// to raft's main loop, like any AppendEntries, and its answer teaches the
// transport the new term. A follower that answered a heartbeat of term T
// with term T is a follower in term T; until it learns a later term (which
// it then rejects a heartbeat of term T for, without writing anything) a
// heartbeat of term T only refreshes its last contact.

// fastHeartbeat reports whether the heartbeat req (isHeartbeat) may run on
// the connection's reader: raft of this group already answered a heartbeat
// of its term as a follower of that term.
func (t *Transport) fastHeartbeat(req any) bool {
	r := req.(*raft.AppendEntriesRequest)
	return r.Term == t.heartbeatTerm.Load()
}

// noteHeartbeat records raft's answer resp to the heartbeat req, on either
// path: a successful answer of the request's own term makes that term the
// one whose heartbeats take the fast path. Other requests and answers are
// ignored.
func (t *Transport) noteHeartbeat(req, resp any, err error) {
	if err != nil || !isHeartbeat(req) {
		return
	}
	r, ok := resp.(*raft.AppendEntriesResponse)
	if !ok || r == nil || !r.Success {
		return
	}
	if term := req.(*raft.AppendEntriesRequest).Term; r.Term == term {
		t.heartbeatTerm.Store(term)
	}
}
