package main

import (
	"slices"
	"testing"
)

// counts returns the replicas and preferred leaders per node after moves.
func counts(parts []placement, moves []move) (replicas, leaders map[int32]int) {
	after := map[[2]any][]int32{}
	for _, m := range moves {
		after[[2]any{m.Topic, m.Partition}] = m.To
	}
	replicas, leaders = map[int32]int{}, map[int32]int{}
	for _, p := range parts {
		rs := p.Replicas
		if to, ok := after[[2]any{p.Topic, p.Partition}]; ok {
			rs = to
		}
		for _, r := range rs {
			replicas[r]++
		}
		leaders[rs[0]]++
	}
	return replicas, leaders
}

func spread(m map[int32]int, nodes []int32) int {
	lo, hi := int(^uint(0)>>1), 0
	for _, n := range nodes {
		lo, hi = min(lo, m[n]), max(hi, m[n])
	}
	return hi - lo
}

func TestPlanBalance(t *testing.T) {
	// Six partitions, RF 2, all on nodes 1 and 2, led by 1.
	var crowded []placement
	for i := range int32(6) {
		crowded = append(crowded, placement{Topic: "t", Partition: i, Replicas: []int32{1, 2}})
	}
	for _, tc := range []struct {
		name      string
		nodes     []int32
		parts     []placement
		wantMoves int // -1: any
		absent    int32
	}{
		{"a new node takes a share", []int32{1, 2, 3}, crowded, -1, 0},
		{"a removed node is emptied", []int32{2, 3}, []placement{
			{"t", 0, []int32{1, 2}}, {"t", 1, []int32{2, 1}}, {"t", 2, []int32{3, 1}},
		}, -1, 1},
		{"balanced stays", []int32{1, 2, 3}, []placement{
			{"t", 0, []int32{1, 2}}, {"t", 1, []int32{2, 3}}, {"t", 2, []int32{3, 1}},
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			moves := planBalance(tc.nodes, tc.parts)
			if tc.wantMoves >= 0 && len(moves) != tc.wantMoves {
				t.Fatalf("%d moves, want %d: %+v", len(moves), tc.wantMoves, moves)
			}
			replicas, leaders := counts(tc.parts, moves)
			if s := spread(replicas, tc.nodes); s > 1 {
				t.Fatalf("replicas per node %v: spread %d", replicas, s)
			}
			if s := spread(leaders, tc.nodes); s > 1 {
				t.Fatalf("leaders per node %v: spread %d", leaders, s)
			}
			if tc.absent != 0 && replicas[tc.absent] != 0 {
				t.Fatalf("node %d keeps %d replicas", tc.absent, replicas[tc.absent])
			}
			for _, m := range moves {
				if len(m.To) != len(m.From) {
					t.Fatalf("%s-%d changes replication factor: %v -> %v", m.Topic, m.Partition, m.From, m.To)
				}
				sorted := slices.Sorted(slices.Values(m.To))
				if len(slices.Compact(sorted)) != len(m.To) {
					t.Fatalf("%s-%d repeats a replica: %v", m.Topic, m.Partition, m.To)
				}
			}
			if again := planBalance(tc.nodes, tc.parts); !slices.EqualFunc(again, moves, func(a, b move) bool { return slices.Equal(a.To, b.To) }) {
				t.Fatal("planBalance is not deterministic")
			}
		})
	}
}
