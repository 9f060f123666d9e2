package main

import (
	"slices"
	"sort"
)

// placement is one partition's replica list, preferred leader first.
type placement struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
}

// move is one partition whose replica list the plan changes.
type move struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	From      []int32 `json:"from"`
	To        []int32 `json:"to"`
}

// planBalance returns the moves that place the replicas of parts on nodes
// only, as evenly as they go: every partition keeps its replica count;
// replicas on nodes not in nodes move to the least loaded node the
// partition is not on yet; then replicas move from the most to the least
// loaded node until their counts differ by at most one; then, within each
// partition, a replica is brought to the front until the preferred
// leaders of the nodes differ by at most one. Each step changes as little
// as it can, so a balanced cluster gets no moves. It is deterministic:
// nodes and partitions are taken in order. A partition with more replicas
// than nodes is left as it is (the caller refuses that first).
func planBalance(nodes []int32, parts []placement) []move {
	nodes = slices.Sorted(slices.Values(nodes))
	allowed := map[int32]bool{}
	for _, n := range nodes {
		allowed[n] = true
	}
	parts = slices.Clone(parts)
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Topic != parts[j].Topic {
			return parts[i].Topic < parts[j].Topic
		}
		return parts[i].Partition < parts[j].Partition
	})
	next := make([][]int32, len(parts))
	load := map[int32]int{}
	for i, p := range parts {
		next[i] = slices.Clone(p.Replicas)
		for _, r := range p.Replicas {
			if allowed[r] {
				load[r]++
			}
		}
	}
	// least returns the least loaded node not in rs (lowest id on ties),
	// or -1.
	least := func(rs []int32) int32 {
		best := int32(-1)
		for _, n := range nodes {
			if !slices.Contains(rs, n) && (best < 0 || load[n] < load[best]) {
				best = n
			}
		}
		return best
	}
	for _, rs := range next {
		if len(rs) > len(nodes) {
			continue
		}
		for j, r := range rs {
			if allowed[r] {
				continue
			}
			to := least(rs)
			rs[j] = to
			load[to]++
		}
	}
	// Even the replica counts: each round moves one replica from the
	// most loaded node to the least loaded one that a partition of the
	// first lacks. The total is bounded by the replica count.
	for range len(parts) * len(nodes) {
		moved := false
		for _, hi := range byLoad(nodes, load, true) {
			for _, lo := range byLoad(nodes, load, false) {
				if load[hi]-load[lo] <= 1 {
					break
				}
				for i, rs := range next {
					j := slices.Index(rs, hi)
					if j < 0 || slices.Contains(rs, lo) {
						continue
					}
					next[i][j] = lo
					load[hi]--
					load[lo]++
					moved = true
					break
				}
				if moved {
					break
				}
			}
			if moved {
				break
			}
		}
		if !moved {
			break
		}
	}
	// Even the preferred leaders by reordering within partitions.
	leaders := map[int32]int{}
	for _, rs := range next {
		if len(rs) > 0 {
			leaders[rs[0]]++
		}
	}
	for range len(parts) * len(nodes) {
		moved := false
		for _, hi := range byLoad(nodes, leaders, true) {
			for _, lo := range byLoad(nodes, leaders, false) {
				if leaders[hi]-leaders[lo] <= 1 {
					break
				}
				for i, rs := range next {
					j := slices.Index(rs, lo)
					if len(rs) == 0 || rs[0] != hi || j < 0 {
						continue
					}
					next[i][0], next[i][j] = lo, hi
					leaders[hi]--
					leaders[lo]++
					moved = true
					break
				}
				if moved {
					break
				}
			}
			if moved {
				break
			}
		}
		if !moved {
			break
		}
	}
	var moves []move
	for i, p := range parts {
		if !slices.Equal(p.Replicas, next[i]) {
			moves = append(moves, move{Topic: p.Topic, Partition: p.Partition, From: p.Replicas, To: next[i]})
		}
	}
	return moves
}

// byLoad returns nodes by count, descending when high (lowest id first
// on ties either way).
func byLoad(nodes []int32, count map[int32]int, high bool) []int32 {
	out := slices.Clone(nodes)
	sort.SliceStable(out, func(i, j int) bool {
		if high {
			return count[out[i]] > count[out[j]]
		}
		return count[out[i]] < count[out[j]]
	})
	return out
}
