package consumergroup

import (
	"fmt"
	"testing"
)

// TestAssignShareSticky checks that a membership change moves as few
// partitions as balance needs (Kafka's simple assignor for share groups):
// starting from a balanced assignment, each step joins or removes
// members, and the test counts the (member, partition) pairs the new
// assignment adds against the minimum balance forces, and checks the
// result is still balanced.
func TestAssignShareSticky(t *testing.T) {
	topic := shareTopic{id: [16]byte{1}, name: "a"}
	type step struct {
		join, leave []string
		// moves is the fewest (member, partition) pairs a balanced
		// assignment must add.
		moves int
	}
	for _, tc := range []struct {
		name       string
		partitions int32
		start      []string
		steps      []step
	}{
		{"fewer members", 6, []string{"m0", "m1", "m2"}, []step{
			{leave: []string{"m2"}, moves: 2},            // m2's two go to m0 and m1
			{join: []string{"m3"}, moves: 2},             // m3 takes one from each
			{join: []string{"m4", "m5", "m6"}, moves: 3}, // each newcomer takes one
			{leave: []string{"m0"}, moves: 1},            // m0's one goes to a member holding one
		}},
		{"more members", 2, []string{"m0", "m1", "m2"}, []step{
			{join: []string{"m3"}, moves: 1},       // m3 shares the partition with one holder
			{leave: []string{"m0"}, moves: 0},      // 3 members on 2 partitions: everyone keeps
			{join: []string{"m4", "m5"}, moves: 2}, // each newcomer shares one
			{leave: []string{"m1", "m2", "m3"}, moves: 0},
			{leave: []string{"m4"}, moves: 1}, // m5 alone takes both
		}},
		{"uneven", 7, []string{"m0", "m1", "m2"}, []step{
			{join: []string{"m3"}, moves: 1},
			{leave: []string{"m1"}, moves: 2},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var members []*shareMember
			join := func(ids []string) {
				for _, id := range ids {
					members = append(members, &shareMember{id: id, subscribed: []string{"a"}})
				}
			}
			shape := map[string]shareTopic{"a": {id: topic.id, name: "a", partitions: tc.partitions}}
			apply := func() (added int) {
				got := assignShare(members, shape)
				for _, m := range members {
					before := map[int32]bool{}
					for _, p := range m.assignment[topic.id] {
						before[p] = true
					}
					for _, p := range got[m.id][topic.id] {
						if !before[p] {
							added++
						}
					}
					m.assignment = got[m.id]
				}
				checkShareBalance(t, members, topic.id, tc.partitions)
				return added
			}
			join(tc.start)
			apply()
			for i, s := range tc.steps {
				join(s.join)
				for _, id := range s.leave {
					for j, m := range members {
						if m.id == id {
							members = append(members[:j], members[j+1:]...)
							break
						}
					}
				}
				if got := apply(); got != s.moves {
					t.Errorf("step %d (join %v, leave %v): %d partitions moved, want %d", i, s.join, s.leave, got, s.moves)
				}
			}
			// Assigning again without a change moves nothing.
			if got := apply(); got != 0 {
				t.Errorf("no change: %d partitions moved", got)
			}
		})
	}
}

// checkShareBalance fails t unless every partition of the topic is
// assigned and partitions per member, and members per partition, differ
// by at most one.
func checkShareBalance(t *testing.T, members []*shareMember, topic [16]byte, partitions int32) {
	t.Helper()
	perPartition := make([]int, partitions)
	minMember, maxMember := int(partitions)+1, -1
	for _, m := range members {
		ps := m.assignment[topic]
		minMember, maxMember = min(minMember, len(ps)), max(maxMember, len(ps))
		for _, p := range ps {
			perPartition[p]++
		}
	}
	minPart, maxPart := len(members)+1, -1
	for _, n := range perPartition {
		minPart, maxPart = min(minPart, n), max(maxPart, n)
	}
	if minPart < 1 || minMember < 1 || maxMember-minMember > 1 || maxPart-minPart > 1 {
		desc := ""
		for _, m := range members {
			desc += fmt.Sprintf(" %s:%v", m.id, m.assignment[topic])
		}
		t.Fatalf("unbalanced: per member %d..%d, per partition %v;%s", minMember, maxMember, perPartition, desc)
	}
}
