package raftgroup

import (
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Failover. A partition's group runs with long Raft timeouts (Config:
// heartbeats every HeartbeatTimeout/10 to /5, seconds apart) so that a
// thousand idle groups cost little, and Raft alone would replace a dead
// leader only after HeartbeatTimeout to twice that. The node's failure
// detector (a FailoverTransport: replication/transport's liveness.go)
// replaces it quickly instead:
//
//   - When the detector declares a peer down, each group that follows
//     that peer as its leader ranks the voters of its configuration that
//     are not down (the dead leader excluded) by a hash of the group's
//     name and the server id, so the groups of a dead node spread their
//     new leaders over the survivors. The first in rank starts an election
//     at once (ElectNow: a TimeoutNow handed to its own raft, which skips
//     the pre-vote and sets the leadership-transfer flag, so the other
//     followers, who still name the dead leader, grant it); the one of
//     rank k does so after k × FailoverStagger if the group still has no
//     leader (the first one's log was behind and it lost, or it is down
//     too), so two followers never split the vote. A follower whose
//     detector is slower may already name no leader (the first one's
//     vote request cleared it): it plans a pre-vote-gated election in its
//     rank instead, or a first one that lost would leave the group to
//     Raft's timers.
//   - A group just bootstrapped (a new partition) does the same with its
//     servers in the order given (the preferred replica first), so a new
//     partition has a leader within about a round trip instead of
//     HeartbeatTimeout.
//   - Damping: a group starts at most one such election per
//     HeartbeatTimeout, and only on a peer's transition to down, so a
//     link that flaps, or an asymmetric partition where two nodes each
//     find the other dead, cannot make them take groups from each other
//     in a loop; past that, Raft's own timeouts and pre-votes decide.
//
// Safety is Raft's: an election is always safe, whoever starts it and
// whenever; a wrong verdict (a live leader declared down) costs one
// election. The detector never answers for a peer. What the long timeouts
// change: a leader cut off from its majority keeps believing it leads
// for up to LeaderLeaseTimeout (it cannot commit, so it acknowledges
// nothing), and a failure the detector cannot see (a live process whose
// group is stuck) is repaired after HeartbeatTimeout, as Raft would.
// After a whole-cluster restart no leader exists to be declared down: the
// groups elect on Raft's timers, HeartbeatTimeout to twice that.

// FailoverTransport is the optional capability of a group's transport
// (replication/transport's Transport has it) on which failover rests.
type FailoverTransport interface {
	// Group returns the group's name, the same on every node.
	Group() string
	// SetPeerDownHandler installs a function called, without blocking,
	// with a peer's address each time the node's failure detector
	// declares it down.
	SetPeerDownHandler(func(peer raft.ServerAddress))
	// SetPeerUpHandler installs a function called, without blocking,
	// with a peer's address each time a peer held down answers again.
	SetPeerUpHandler(func(peer raft.ServerAddress))
	// WatchPeer makes the failure detector watch a peer.
	WatchPeer(peer raft.ServerAddress)
	// PeerDown reports whether the failure detector holds a peer down.
	PeerDown(peer raft.ServerAddress) bool
	// ElectNow makes the group's own raft start an election now, as a
	// TimeoutNow request does, unless still (asked just before raft gets
	// the request) reports false.
	ElectNow(still func() bool) error
}

// planKind is what a planned election waits for.
type planKind int

const (
	// planLeaderDown: the leader's node was declared down; elect when due,
	// as long as the group still names that leader (or none).
	planLeaderDown planKind = iota + 1
	// planLeaderless: the group has no leader (new, or just opened); when
	// due, elect only if a majority of voters would vote for this node
	// (a pre-vote: they name no leader either and this log is not behind
	// theirs), else try again every FailoverStagger/4 until the plan's
	// end.
	planLeaderless
)

// heartbeatReuser is the optional capability of a group's transport to
// answer heartbeats from a follower's last real answer for a while
// (replication/transport's heartbeat_reuse.go).
type heartbeatReuser interface {
	SetHeartbeatReuse(window time.Duration)
}

// leaveAnnouncer is the optional capability of a group's transport to
// tell the peers that this node's replica leaves the group, and to hear
// that a peer's did (replication/transport's leaving.go).
type leaveAnnouncer interface {
	SetLeaderLeftHandler(func(leader raft.ServerAddress))
	AnnounceLeaving(peers []raft.ServerAddress) error
	// Detach stops the group receiving RPCs while its own still go out.
	Detach()
}

// heartbeatBatcher is the optional capability of a group's transport to
// hold its heartbeats a while for others to the same peer, to go in one
// frame (replication/transport's heartbeat_batch.go).
type heartbeatBatcher interface {
	SetHeartbeatBatchWindow(window time.Duration)
}

// heartbeatBatchWindow is how long a group's heartbeat may wait for
// others to the same peer: a fortieth of HeartbeatTimeout (250 ms at the
// 20 s default), against heartbeats every HeartbeatTimeout/10 to /5 and a
// lease of half the timeout, so a heartbeat is late by a small part of
// its interval while a node's heartbeats to a peer go out a few times a
// second in a few frames instead of a frame every few milliseconds.
func heartbeatBatchWindow(c Config) time.Duration { return c.HeartbeatTimeout / 40 }

// appendRetryWaiter is the optional capability of a group's transport to
// retry a failed AppendEntries itself while the follower's node is down
// or has not opened the group yet (replication/transport's
// append_retry.go), rather than leave it to raft's next try, which for an
// idle group is CommitTimeout away.
type appendRetryWaiter interface {
	SetAppendRetryWait(wait time.Duration)
	// EndAppendRetries ends the waits, now and later: raft's Shutdown
	// waits for the goroutines waiting in them.
	EndAppendRetries()
}

// appendRetryWait is how long the transport retries a failed
// AppendEntries: three heartbeat timeouts (a minute at the defaults).
// Raft's replication goroutine for that follower waits in the call
// meanwhile; an outage longer than this is retried at raft's next try.
func appendRetryWait(c Config) time.Duration { return 3 * c.HeartbeatTimeout }

// idleAppendReuser is the optional capability of a group's transport to
// answer an idle AppendEntries from the follower's last real answer to an
// identical one (replication/transport's heartbeat_reuse.go).
type idleAppendReuser interface {
	SetIdleAppendReuse(maxAge time.Duration)
}

// idleAppendReuseAge is how long a real answer to an idle AppendEntries
// may stand in for identical ones: ten heartbeat timeouts (200 s at the
// 20 s default), as the metadata group's. Identical requests tell the
// follower nothing new, and the heartbeats, sent meanwhile, reveal a later
// term as before. At three (60 s), the real idle AppendEntries of 1,000
// partitions created together came due together every minute, each
// burst a 10 s window of 5-8 % of a core per node against 3-4 % between.
func idleAppendReuseAge(c Config) time.Duration { return 10 * c.HeartbeatTimeout }

// heartbeatReuseWindow is how long a group's heartbeats may be answered
// from a follower's last real answer: with heartbeats every
// HeartbeatTimeout/10 to /5, a follower still hears from its leader at
// least every half of its HeartbeatTimeout.
func heartbeatReuseWindow(c Config) time.Duration { return c.HeartbeatTimeout * 3 / 10 }

// failoverState is the watch goroutine's plan of an election; only that
// goroutine touches it.
type failoverState struct {
	// timer fires when the planned election is due; nil when none is.
	timer *time.Timer
	kind  planKind
	// leader is the dead leader a planLeaderDown replaces; left, that its
	// replica announced it left the group (its node may answer on).
	leader raft.ServerAddress
	left   bool
	// until ends a planLeaderless's retries.
	until time.Time
	// last is when this node last started an election of the group
	// because its leader's node was down.
	last time.Time
}

// peerDown is the transport's peer-down handler: it hands addr to the
// watch goroutine.
func (g *Group) peerDown(addr raft.ServerAddress) { g.queueFailoverPeer(&g.downPeers, addr) }

// queueFailoverPeer adds addr to *list (downPeers or leftLeaders) unless
// there, and wakes the watch goroutine to look.
func (g *Group) queueFailoverPeer(list *[]raft.ServerAddress, addr raft.ServerAddress) {
	g.downMu.Lock()
	if !slices.Contains(*list, addr) {
		*list = append(*list, addr)
	}
	g.downMu.Unlock()
	g.wakeFailover()
}

// leaderLeft is the transport's leader-left handler: a peer's replica
// announced it left the group (its storage failed) while its node runs
// on, which the failure detector cannot see. The watch goroutine treats
// it as that node's death, for this group alone.
func (g *Group) leaderLeft(addr raft.ServerAddress) { g.queueFailoverPeer(&g.leftLeaders, addr) }

// peerUp is the transport's peer-up handler: the watch goroutine makes a
// leader heartbeat every follower at once (VerifyLeader does), so a
// follower that restarted learns its leader now rather than after raft's
// heartbeat backoff (up to HeartbeatTimeout/2 after failures).
func (g *Group) peerUp(raft.ServerAddress) {
	g.downMu.Lock()
	g.peersUp = true
	g.downMu.Unlock()
	g.wakeFailover()
}

// wakeFailover makes the watch goroutine look at failover events.
func (g *Group) wakeFailover() {
	select {
	case g.downSignal <- struct{}{}:
	default:
	}
}

// takeFailoverEvents runs on the watch goroutine when downSignal fires:
// it plans an election for each peer down that this node follows, and
// for a bootstrap.
func (g *Group) takeFailoverEvents() {
	g.downMu.Lock()
	peers, left, boot, opened, up := g.downPeers, g.leftLeaders, g.bootstrapServers, g.opened, g.peersUp
	g.downPeers, g.leftLeaders, g.bootstrapServers, g.opened, g.peersUp = nil, nil, nil, false, false
	g.downMu.Unlock()
	if up && g.raft.State() == raft.Leader {
		// Its answer (leadership confirmed or not) is of no use here:
		// what matters is the heartbeats it sends.
		_ = g.raft.VerifyLeader()
	}
	for _, addr := range peers {
		g.leaderDown(addr, false)
	}
	for _, addr := range left {
		g.leaderDown(addr, true)
	}
	switch {
	case boot != nil:
		// A new group: the servers in the order given (the preferred
		// replica first).
		rank := slices.IndexFunc(boot, func(s raft.Server) bool { return s.ID == g.id })
		if rank >= 0 && len(boot) > 1 {
			g.planLeaderless(time.Duration(rank) * g.cfg.FailoverStagger)
		}
	case opened:
		// An existing group just opened (a restart): its leader, if it
		// has one, makes contact within a heartbeat interval or two;
		// the pre-vote keeps this node from disturbing it.
		f := g.raft.GetConfiguration()
		if f.Error() != nil {
			return
		}
		rank := electionRank(g.failover.Group(), g.id, "", f.Configuration().Servers, g.failover.PeerDown)
		if rank >= 0 && len(f.Configuration().Servers) > 1 {
			g.planLeaderless(g.cfg.HeartbeatTimeout/5 + time.Duration(rank)*g.cfg.FailoverStagger)
		}
	}
}

// leaderDown plans an election when the group follows dead as its leader,
// or names no leader and dead is one of its voters. left: dead's replica
// announced it left the group (its node is alive), rather than the
// failure detector declaring its node down.
func (g *Group) leaderDown(dead raft.ServerAddress, left bool) {
	if g.raft.State() != raft.Follower {
		return
	}
	leader, _ := g.raft.LeaderWithID()
	if leader != dead && leader != "" {
		return
	}
	f := g.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	rank := electionRank(g.failover.Group(), g.id, dead, f.Configuration().Servers, g.failover.PeerDown)
	if rank < 0 {
		return
	}
	if leader == "" {
		// Another survivor's detector was quicker: its vote request
		// made this node forget the dead leader, and it may have lost
		// (its log behind this one's). Nobody else plans an election
		// then, so plan one gated by a pre-vote, lest the group wait
		// for Raft's own timer (HeartbeatTimeout).
		if !slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool { return s.Address == dead }) {
			return
		}
		g.logger.Debug("leaderless when a voter's node went down, planning an election", zap.String("down", string(dead)), zap.Int("rank", rank))
		g.planLeaderless(time.Duration(rank) * g.cfg.FailoverStagger)
		return
	}
	g.logger.Debug("leader's node down, planning an election", zap.String("leader", string(dead)), zap.Int("rank", rank))
	g.plan.kind, g.plan.leader, g.plan.left = planLeaderDown, dead, left
	g.armElection(time.Duration(rank) * g.cfg.FailoverStagger)
}

// planLeaderless plans a pre-vote-gated election after delay, retried
// until HeartbeatTimeout after that (then Raft's own timer takes over).
func (g *Group) planLeaderless(delay time.Duration) {
	if g.plan.timer != nil && g.plan.kind == planLeaderDown {
		return // a dead leader's replacement goes first
	}
	g.plan.kind, g.plan.leader, g.plan.left = planLeaderless, "", false
	g.plan.until = time.Now().Add(delay + g.cfg.HeartbeatTimeout)
	g.armElection(delay)
}

// electionRank returns self's place among the voters of servers that may
// replace dead (not dead, not down), ordered by a hash of group and
// server id; -1 when self is not one of them.
func electionRank(group string, self raft.ServerID, dead raft.ServerAddress, servers []raft.Server, down func(raft.ServerAddress) bool) int {
	type ranked struct {
		id   raft.ServerID
		hash uint64
	}
	var voters []ranked
	for _, s := range servers {
		if s.Suffrage != raft.Voter || s.Address == dead || (s.ID != self && down(s.Address)) {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(group))
		h.Write([]byte{0})
		h.Write([]byte(s.ID))
		voters = append(voters, ranked{s.ID, h.Sum64()})
	}
	slices.SortFunc(voters, func(a, b ranked) int {
		if a.hash != b.hash {
			if a.hash < b.hash {
				return -1
			}
			return 1
		}
		if a.id < b.id {
			return -1
		}
		return 1
	})
	return slices.IndexFunc(voters, func(r ranked) bool { return r.id == self })
}

// armElection makes the planned election due after delay (at once when
// 0), replacing any timer armed before.
func (g *Group) armElection(delay time.Duration) {
	g.stopElectionTimer()
	if delay <= 0 {
		g.electionDueNow()
		return
	}
	g.plan.timer = time.NewTimer(delay)
}

// electionDue returns the channel of the planned election's timer, nil
// when none is planned.
func (g *Group) electionDue() <-chan time.Time {
	if g.plan.timer == nil {
		return nil
	}
	return g.plan.timer.C
}

// stopElectionTimer drops the planned election's timer.
func (g *Group) stopElectionTimer() {
	if g.plan.timer != nil {
		g.plan.timer.Stop()
		g.plan.timer = nil
	}
}

// electionDueNow starts the planned election if the group is still a
// follower that names no leader (or the dead one) and the plan's
// condition holds; a planLeaderless whose pre-vote fails is tried again
// later.
func (g *Group) electionDueNow() {
	g.stopElectionTimer()
	if g.raft.State() != raft.Follower {
		return
	}
	leader, _ := g.raft.LeaderWithID()
	switch g.plan.kind {
	case planLeaderDown:
		if leader != "" && leader != g.plan.leader {
			return
		}
		// Damping: one such election per HeartbeatTimeout.
		if !g.plan.last.IsZero() && time.Since(g.plan.last) < g.cfg.HeartbeatTimeout {
			return
		}
		g.plan.last = time.Now()
	case planLeaderless:
		if leader != "" {
			return
		}
		if !g.preVoteQuorum() {
			if time.Now().Before(g.plan.until) {
				g.plan.timer = time.NewTimer(g.cfg.FailoverStagger / 4)
			}
			return
		}
	default:
		return
	}
	// Raft gets the request behind what its queue holds: by then a
	// leader may have made contact.
	// A dead leader's node that answers again by then (it was only
	// stalled) keeps its groups.
	dead, left := g.plan.leader, g.plan.left
	still := func() bool {
		leader, _ := g.raft.LeaderWithID()
		return g.raft.State() == raft.Follower && (leader == "" || leader == dead) &&
			(dead == "" || left || g.failover.PeerDown(dead))
	}
	if err := g.failover.ElectNow(still); err != nil {
		g.logger.Debug("election not started", zap.Error(err))
		return
	}
	g.logger.Debug("election started", zap.String("replacing", string(g.plan.leader)))
}

// preVoteQuorum asks the other voters not held down whether they would
// vote for this node in the next term (RequestPreVote: it changes nothing
// on them) and reports whether a majority, this node included, would.
// A voter that names a leader, has a later term or a longer log says no;
// a voter whose group is not open yet answers with an error.
func (g *Group) preVoteQuorum() bool {
	f := g.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	var others []raft.Server
	voters, self := 0, false
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if s.ID == g.id {
			self = true
		} else if !g.failover.PeerDown(s.Address) {
			others = append(others, s)
		}
	}
	if !self || g.preVoter == nil {
		return false
	}
	lastIndex, lastTerm := g.lastEntry()
	req := &raft.RequestPreVoteRequest{
		RPCHeader:    raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(g.id), Addr: []byte(g.localAddr)},
		Term:         g.raft.CurrentTerm() + 1,
		LastLogIndex: lastIndex,
		LastLogTerm:  lastTerm,
	}
	granted := make(chan bool, len(others))
	for _, s := range others {
		go func() {
			var resp raft.RequestPreVoteResponse
			err := g.preVoter.RequestPreVote(s.ID, s.Address, req, &resp)
			granted <- err == nil && resp.Granted
		}()
	}
	votes := 1
	for range others {
		if <-granted {
			votes++
		}
	}
	return votes > voters/2
}

// lastEntry returns the index and term of this node's last entry, the
// latest snapshot's when that is later, as Raft compares them in votes.
func (g *Group) lastEntry() (index, term uint64) {
	st := g.raft.Stats()
	parse := func(k string) uint64 {
		v, _ := strconv.ParseUint(st[k], 10, 64)
		return v
	}
	index, term = parse("last_log_index"), parse("last_log_term")
	if si := parse("last_snapshot_index"); si > index {
		index, term = si, parse("last_snapshot_term")
	}
	return index, term
}
