package consumergroup

import (
	"sort"
	"time"
)

// ShareGroupProtocolType is the protocol type and group type a share group
// (KIP-932) is listed with.
const ShareGroupProtocolType = "share"

// shareGroup is one share group: its members, their assignments, and the
// group epoch. All fields are guarded by Coordinator.mu.
type shareGroup struct {
	id string
	// epoch is the group epoch: it grows whenever the target assignment
	// may change (a member joins, leaves or changes its subscription,
	// or a subscribed topic's partition count or id changes). It is
	// persisted; a member's epoch catches up on its own heartbeat.
	epoch   int32
	members map[string]*shareMember
	// shape is the metadata of the subscribed topics the current
	// assignment was computed from: a change recomputes it.
	shape map[string]shareTopic
	// topics are the topics, by id, whose partitions were ever assigned
	// in this group, with the largest partition count seen: their
	// share-partitions may have state (DescribeShareGroupOffsets with
	// no topics, DeleteGroups). Persisted with the epoch.
	topics map[[16]byte]shareTopic
	// joinSeq orders members by when they joined.
	joinSeq uint64
	// createdAt is when the group was created (first joined).
	createdAt time.Time
	// stored is set once the group's record was appended since it was
	// created or loaded with its current epoch.
	stored bool
	// emptySince is when the group last had no members.
	emptySince time.Time
}

// shareTopic is a topic as an assignment sees it.
type shareTopic struct {
	id         [16]byte
	name       string
	partitions int32
}

// shareMember is one member of a share group.
type shareMember struct {
	id             string
	rackID         *string
	clientID, host string
	// epoch is the member epoch: the group epoch of the assignment last
	// sent to it; previousEpoch the one before (a heartbeat whose
	// answer was lost carries it and is still accepted).
	epoch, previousEpoch int32
	// subscribed are the topic names it subscribes to, sorted.
	subscribed []string
	// assignment is its partitions, by topic id, each list sorted.
	assignment map[[16]byte][]int32
	joinSeq    uint64

	sessionTimer *time.Timer
	// sessionSeq invalidates the callbacks of replaced session timers.
	sessionSeq uint64
}

func newShareGroup(id string, now time.Time) *shareGroup {
	return &shareGroup{
		id:         id,
		members:    make(map[string]*shareMember),
		shape:      make(map[string]shareTopic),
		topics:     make(map[[16]byte]shareTopic),
		emptySince: now,
		createdAt:  now,
	}
}

// state is the group's state as Kafka names a share group's: Empty or
// Stable (Dead is a group that does not exist).
func (g *shareGroup) state() string {
	if len(g.members) == 0 {
		return "Empty"
	}
	return "Stable"
}

// subscribedTopics returns the union of the members' subscriptions,
// sorted.
func (g *shareGroup) subscribedTopics() []string {
	seen := make(map[string]bool)
	var names []string
	for _, m := range g.members {
		for _, t := range m.subscribed {
			if !seen[t] {
				seen[t] = true
				names = append(names, t)
			}
		}
	}
	sort.Strings(names)
	return names
}

// sortedMembers returns the members in join order.
func (g *shareGroup) sortedMembers() []*shareMember {
	ms := make([]*shareMember, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].joinSeq < ms[j].joinSeq })
	return ms
}

// sameShape reports whether two topic metadata maps are equal.
func sameShape(a, b map[string]shareTopic) bool {
	if len(a) != len(b) {
		return false
	}
	for name, t := range a {
		if b[name] != t {
			return false
		}
	}
	return true
}
