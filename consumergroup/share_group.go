package consumergroup

import (
	"slices"
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

// assignShare computes the target assignment of a share group (Kafka's
// simple assignor semantics: every partition of a subscribed topic is
// assigned, and a partition may go to several members, since the records
// of a share-partition are handed out one acquisition at a time). For each
// topic, with M subscribers in join order and N partitions, it lays out
// max(M, N) slots: slot k gives partition k mod N to subscriber
// (k + offset) mod M, where offset is the topic's position among the
// subscribed topics, so that the odd partitions of several topics do not
// all land on the first member. So with M <= N each member gets N/M partitions (one
// more for some), each partition one member; with M > N each member gets
// one partition and each partition M/N members (one more for some).
//
// members are in join order; shape is the subscribed topics' metadata
// (topics not in it do not exist and are not assigned). The result maps
// member id to its partitions by topic id, each list sorted; a member
// with nothing has no entry.
func assignShare(members []*shareMember, shape map[string]shareTopic) map[string]map[[16]byte][]int32 {
	out := make(map[string]map[[16]byte][]int32)
	names := make([]string, 0, len(shape))
	for name := range shape {
		names = append(names, name)
	}
	sort.Strings(names)
	for offset, name := range names {
		t := shape[name]
		var subs []*shareMember
		for _, m := range members {
			if _, ok := slices.BinarySearch(m.subscribed, name); ok {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 || t.partitions <= 0 {
			continue
		}
		n, members := int(t.partitions), len(subs)
		for k := 0; k < max(n, members); k++ {
			m := subs[(k+offset)%members]
			if out[m.id] == nil {
				out[m.id] = make(map[[16]byte][]int32)
			}
			out[m.id][t.id] = append(out[m.id][t.id], int32(k%n))
		}
	}
	for _, a := range out {
		for id := range a {
			slices.Sort(a[id])
			a[id] = slices.Compact(a[id])
		}
	}
	return out
}
