package raftgroup

import (
	"maps"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// In-sync replicas. On the leader a replica is in sync unless Raft
// reports its heartbeats failing or it is catching up from this node's
// segments (it read this node's log lately). Raft tells of heartbeats by
// observations, FailedHeartbeatObservation at every failed attempt and
// ResumedHeartbeatObservation at the first success after failures, and
// neither is reliable alone as a state: the observer drops an
// observation when its channel is full (it must never block raft), and a
// replication goroutine that stops, its server removed (a reassignment
// removes and adds a replica again), says nothing more, while the new
// one starts with no failures to resume from. So a failure is kept with
// its time, forgotten when Raft reports the heartbeats resumed or the
// peer's replication started or stopped, and ignored once older than
// heartbeatFailedLag heartbeat timeouts: a follower still unreachable
// fails again sooner (raft's heartbeat backoff is at most half a
// heartbeat timeout, plus the transport's timeout per attempt).

// heartbeatFailedLag is how many heartbeat timeouts a failed heartbeat
// keeps its replica out of sync when no later observation tells.
const heartbeatFailedLag = 2

// readingLogLag is how many heartbeat timeouts after its last read of
// this node's log a replica counts as catching up (out of sync) when no
// answered install says its catch-up ended (peerRestored): the reads of
// one catch-up follow each other closely, but a restore may pause
// between attempts (a failed InstallSnapshot is sent again, after raft's
// backoff of at most half a heartbeat timeout), so twice the longest
// pause.
const readingLogLag = 1

// InSync returns those of replicas (node ids as server ids) the leader
// has heard from since its last failed heartbeat to them and that are not
// catching up from its segments: every replica but the ones whose last
// heartbeat failed (within heartbeatFailedLag heartbeat timeouts) and
// the ones that read this node's log within the last readingLogLag
// heartbeat timeouts. Meaningful on the leader.
func (g *Group) InSync(replicas []int32) []int32 {
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	if len(g.unreachable) == 0 && len(g.readingLog) == 0 {
		return replicas
	}
	now := time.Now()
	maps.DeleteFunc(g.readingLog, func(_ raft.ServerID, at time.Time) bool {
		return now.Sub(at) > readingLogLag*g.cfg.HeartbeatTimeout
	})
	maps.DeleteFunc(g.unreachable, func(_ raft.ServerID, at time.Time) bool {
		return now.Sub(at) > heartbeatFailedLag*g.cfg.HeartbeatTimeout
	})
	out := make([]int32, 0, len(replicas))
	for _, r := range replicas {
		id := raft.ServerID(strconv.Itoa(int(r)))
		_, failed := g.unreachable[id]
		if _, reading := g.readingLog[id]; !failed && !reading {
			out = append(out, r)
		}
	}
	return out
}

// noteHeartbeatFailed records that a heartbeat to id failed just now.
func (g *Group) noteHeartbeatFailed(id raft.ServerID) {
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	if g.unreachable == nil {
		g.unreachable = map[raft.ServerID]time.Time{}
	}
	g.unreachable[id] = time.Now()
}

// forgetHeartbeatFailed forgets id's failed heartbeat.
func (g *Group) forgetHeartbeatFailed(id raft.ServerID) {
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	delete(g.unreachable, id)
}

// forgetHeartbeatFailures forgets every failed heartbeat: leadership
// changed, and a new leader's heartbeats start anew.
func (g *Group) forgetHeartbeatFailures() {
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	clear(g.unreachable)
}

// noteReadingLog records that the replica at addr reads this node's log
// to catch up: it is out of sync until it stops.
func (g *Group) noteReadingLog(addr raft.ServerAddress) { g.markReadingLog(addr, true) }

// peerRestored hears that the replica at addr installed the snapshot
// this node sent: its restore, reads of this node's log included, ended,
// and it holds every entry up to the snapshot. It is in sync again at
// once, not readingLogLag after its last read.
func (g *Group) peerRestored(addr raft.ServerAddress) { g.markReadingLog(addr, false) }

// markReadingLog records the replica at addr as reading this node's log
// from now on, or as no longer reading it.
func (g *Group) markReadingLog(addr raft.ServerAddress, reading bool) {
	id, ok := g.serverAt(addr)
	if !ok {
		return
	}
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	if !reading {
		delete(g.readingLog, id)
		return
	}
	if g.readingLog == nil {
		g.readingLog = map[raft.ServerID]time.Time{}
	}
	g.readingLog[id] = time.Now()
}

// serverAt returns the id of the server at addr in the group's latest
// configuration.
func (g *Group) serverAt(addr raft.ServerAddress) (raft.ServerID, bool) {
	f := g.raft.GetConfiguration()
	if f.Error() != nil {
		return "", false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.Address == addr {
			return srv.ID, true
		}
	}
	return "", false
}
