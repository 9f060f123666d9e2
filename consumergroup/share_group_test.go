package consumergroup

import (
	"fmt"
	"testing"
)

// TestAssignShare checks the simple assignor on any number of members and
// partitions: every partition of a subscribed topic is assigned, members
// get a balanced share (partitions per member, and members per partition,
// differ by at most one), and unsubscribed or unknown topics get nothing.
func TestAssignShare(t *testing.T) {
	id := func(b byte) [16]byte { return [16]byte{b} }
	for _, tc := range []struct {
		name       string
		members    int
		partitions int32
	}{
		{"one member one partition", 1, 1},
		{"fewer members", 2, 5},
		{"equal", 3, 3},
		{"more members", 4, 2},
		{"many more members", 7, 3},
		{"single partition", 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var members []*shareMember
			for i := range tc.members {
				members = append(members, &shareMember{id: fmt.Sprintf("m%d", i), subscribed: []string{"a"}})
			}
			shape := map[string]shareTopic{"a": {id: id(1), name: "a", partitions: tc.partitions}}
			got := assignShare(members, shape)
			perPartition := make([]int, tc.partitions)
			minMember, maxMember := int(tc.partitions)+1, -1
			for _, m := range members {
				ps := got[m.id][id(1)]
				minMember, maxMember = min(minMember, len(ps)), max(maxMember, len(ps))
				for i, p := range ps {
					if i > 0 && ps[i-1] >= p {
						t.Fatalf("member %s partitions %v not sorted and distinct", m.id, ps)
					}
					perPartition[p]++
				}
			}
			minPart, maxPart := tc.members+1, -1
			for _, n := range perPartition {
				minPart, maxPart = min(minPart, n), max(maxPart, n)
			}
			if minPart < 1 {
				t.Errorf("a partition is unassigned: %v", perPartition)
			}
			if minMember < 1 {
				t.Errorf("a member has nothing: %v", got)
			}
			if maxMember-minMember > 1 || maxPart-minPart > 1 {
				t.Errorf("unbalanced: per member %d..%d, per partition %v", minMember, maxMember, perPartition)
			}
		})
	}
	t.Run("subscriptions", func(t *testing.T) {
		members := []*shareMember{
			{id: "x", subscribed: []string{"a", "b"}},
			{id: "y", subscribed: []string{"b", "gone"}},
		}
		shape := map[string]shareTopic{
			"a": {id: id(1), name: "a", partitions: 2},
			"b": {id: id(2), name: "b", partitions: 1},
		}
		got := assignShare(members, shape)
		if fmt.Sprint(got["x"][id(1)]) != "[0 1]" || len(got["y"][id(1)]) != 0 {
			t.Errorf("topic a: x %v, y %v; want x [0 1], y nothing", got["x"][id(1)], got["y"][id(1)])
		}
		if fmt.Sprint(got["x"][id(2)]) != "[0]" || fmt.Sprint(got["y"][id(2)]) != "[0]" {
			t.Errorf("topic b: x %v, y %v; want both [0]", got["x"][id(2)], got["y"][id(2)])
		}
	})
	t.Run("odd partitions spread over topics", func(t *testing.T) {
		members := []*shareMember{{id: "x", subscribed: []string{"a", "b"}}, {id: "y", subscribed: []string{"a", "b"}}}
		shape := map[string]shareTopic{"a": {id: id(1), name: "a", partitions: 3}, "b": {id: id(2), name: "b", partitions: 3}}
		got := assignShare(members, shape)
		for _, m := range []string{"x", "y"} {
			if n := len(got[m][id(1)]) + len(got[m][id(2)]); n != 3 {
				t.Errorf("member %s has %d partitions (%v), want 3 of the 6", m, n, got[m])
			}
		}
	})
}
