package consumergroup

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is a classic group's state, as Kafka names them.
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	}
	return "Dead"
}

// topicPartition names a partition whose offset a group committed.
type topicPartition struct {
	topic     string
	partition int32
}

// committed is one committed offset.
type committed struct {
	offset          int64
	leaderEpoch     int32
	metadata        string
	commitTimestamp int64 // ms
	// logOffset is the offset of the record in __consumer_offsets: of two
	// commits of one partition the later record wins, whatever order
	// their writes complete in. A load sets it too: a transactional
	// commit completed by a later marker compares with it.
	logOffset int64
	// movedAt (ms) is when the partition's offset last changed: the commit
	// timestamp of the first commit of this offset (re-committing the same
	// offset keeps it). movedGeneration is the group's generation then.
	// Stuck detection (stuck.go) compares them with now and the current
	// generation.
	movedAt         int64
	movedGeneration int32
}

// group is one consumer group. All fields are guarded by Coordinator.mu.
type group struct {
	id           string
	state        groupState
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	// static maps group.instance.id to the member id that holds it.
	static map[string]string
	// pending are member ids handed out with MEMBER_ID_REQUIRED, expected
	// to join again; a rebalance waits for them.
	pending map[string]*time.Timer
	offsets map[topicPartition]committed
	// txnOffsets are offsets committed inside open transactions
	// (TxnOffsetCommit), by producer id: invisible until the producer's
	// marker commits them (completeTxnLocked), dropped if it aborts.
	txnOffsets map[int64]map[topicPartition]committed

	// rebalanceTimer ends the join phase: the rebalance timeout, or the
	// initial rebalance delay of a group that was empty.
	rebalanceTimer *time.Timer
	// delaying is true while the initial rebalance delay runs: the join
	// phase does not end early even if every member has joined.
	delaying bool
	// joinSeq orders members by when they first joined (leader choice).
	joinSeq uint64
	// emptySince is when the group last became empty (offset expiry).
	emptySince time.Time

	// inflight counts offset commits appended but not yet applied;
	// pendingCommits counts them per partition, so that deleting the group
	// also writes tombstones for them; tombstones holds, while commits are
	// in flight, the log offsets of deletions, so an older commit that
	// completes later does not bring an offset back.
	inflight       int
	pendingCommits map[topicPartition]int
	tombstones     map[topicPartition]int64
	// initialRemaining is how much longer the initial rebalance delay may
	// be extended, newMemberAdded whether a member joined during the
	// current delay (Kafka's InitialDelayedJoin).
	initialRemaining time.Duration
	newMemberAdded   bool
}

// applyCommitLocked records a committed offset whose record is at
// logOffset unless a later record of the partition was applied already.
func (g *group) applyCommitLocked(tp topicPartition, o committed) {
	if old, ok := g.offsets[tp]; ok && old.logOffset > o.logOffset {
		return
	}
	if t, ok := g.tombstones[tp]; ok && t > o.logOffset {
		return
	}
	if old, ok := g.offsets[tp]; ok && old.offset == o.offset {
		o.movedAt, o.movedGeneration = old.movedAt, old.movedGeneration
	} else {
		o.movedAt, o.movedGeneration = o.commitTimestamp, g.generation
	}
	g.offsets[tp] = o
}

// deleteOffsetLocked deletes a committed offset whose tombstone is at
// logOffset.
func (g *group) deleteOffsetLocked(tp topicPartition, logOffset int64) {
	delete(g.offsets, tp)
	if g.inflight > 0 {
		g.tombstones[tp] = logOffset
	}
}

// member is one member of a group.
type member struct {
	id               string
	instanceID       *string
	clientID, host   string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte
	joinSeq          uint64

	// joinCh is set while the member waits in JoinGroup; syncCh while it
	// waits in SyncGroup. Each has room for its one answer, so answering
	// never blocks the coordinator.
	joinCh chan *kmsg.JoinGroupResponse
	syncCh chan *kmsg.SyncGroupResponse

	sessionTimer *time.Timer
	// sessionSeq invalidates the callbacks of replaced session timers.
	sessionSeq uint64
}

func newGroup(id string, now time.Time) *group {
	return &group{
		id:         id,
		members:    make(map[string]*member),
		static:     make(map[string]string),
		pending:    make(map[string]*time.Timer),
		offsets:    make(map[topicPartition]committed),
		emptySince: now,

		txnOffsets: make(map[int64]map[topicPartition]committed),

		pendingCommits: make(map[topicPartition]int),
		tombstones:     make(map[topicPartition]int64),
	}
}

// metadataFor returns the member's metadata for protocol name.
func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether a rejoin changes nothing the assignment
// depends on.
func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}

// supports reports whether protocols of a joining member fit the group:
// the same protocol type and at least one protocol every member supports.
func (g *group) supports(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return true
	}
	if g.protocolType != protocolType {
		return false
	}
	for _, name := range g.candidates() {
		for _, p := range protocols {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

// candidates returns the protocols every member supports, in the order of
// an arbitrary member's preference.
func (g *group) candidates() []string {
	var names []string
	first := true
	for _, m := range g.members {
		if first {
			for _, p := range m.protocols {
				names = append(names, p.Name)
			}
			first = false
			continue
		}
		kept := names[:0]
		for _, n := range names {
			if hasProtocol(m.protocols, n) {
				kept = append(kept, n)
			}
		}
		names = kept
	}
	return names
}

func hasProtocol(ps []kmsg.JoinGroupRequestProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// vote chooses the group's protocol as Kafka does: each member votes for
// its most preferred protocol among those all members support; the most
// votes win (ties: the first candidate in preference order).
func (g *group) vote() string {
	candidates := g.candidates()
	votes := make(map[string]int, len(candidates))
	for _, m := range g.members {
		for _, p := range m.protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// allJoined reports whether the join phase may end: every member is
// waiting in JoinGroup and no handed-out member id is still expected.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return false
		}
	}
	return true
}

// maxRebalanceTimeout is the longest rebalance timeout of the members.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}
