package meta

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Assign places replicas for partitions [first, first+count) of a topic on
// nodes, the way Kafka places them without racks
// (AdminUtils.assignReplicasToBrokersRackUnaware): partition p's first
// replica (its preferred leader) is nodes[(p+start) mod n], so leaders go
// round-robin; the other replicas follow it at a distance that shifts by
// one after every n partitions, so followers of one leader spread over
// every other node instead of always landing on its neighbours.
//
// The result is a pure function of its arguments: rf distinct nodes per
// partition, in preference order. nodes must be distinct; their order is
// the round-robin order. Errors are kerr.InvalidReplicationFactor (rf < 1
// or more than len(nodes)) and kerr.InvalidPartitions.
func Assign(nodes []int32, first, count int32, rf int16, start, shift int) ([][]int32, error) {
	n := len(nodes)
	if rf < 1 || int(rf) > n {
		return nil, fmt.Errorf("replication factor %d must be between 1 and the %d available nodes: %w", rf, n, kerr.InvalidReplicationFactor)
	}
	if first < 0 || count < 1 || first+count > MaxPartitions {
		return nil, fmt.Errorf("partitions [%d, %d) are outside [0, %d): %w", first, int64(first)+int64(count), MaxPartitions, kerr.InvalidPartitions)
	}
	start, shift = mod(start, n), mod(shift, n)
	out := make([][]int32, 0, count)
	for p := int(first); p < int(first+count); p++ {
		// Kafka shifts once per full round, counted from partition 0, so
		// appended partitions continue the pattern of the first ones.
		s := shift + p/n
		leader := (p + start) % n
		rs := make([]int32, 0, rf)
		rs = append(rs, nodes[leader])
		for j := 0; j < int(rf)-1; j++ {
			rs = append(rs, nodes[(leader+1+(s+j)%(n-1))%n])
		}
		out = append(out, rs)
	}
	return out, nil
}

func mod(a, n int) int {
	a %= n
	if a < 0 {
		a += n
	}
	return a
}

// Place chooses replicas for count partitions of a new topic with
// replication factor rf on the active nodes of s, with Assign: leaders
// start at the active node that is preferred leader of the fewest
// partitions (lowest id on ties), and of the follower shifts the one
// leaving replicas most even over the nodes is taken (the smallest on
// ties), so topic after topic stays balanced. It is deterministic in s;
// the proposer calls it on the state it saw and puts the result in
// CreateTopic.
func (s *State) Place(count int32, rf int16) ([][]int32, error) {
	return s.place(0, count, rf)
}

// PlaceMore chooses replicas for the partitions [len(t.Partitions), count)
// that CreatePartitions adds to topic t, as Place does, with the
// replication factor of its first partition.
func (s *State) PlaceMore(t *Topic, count int32) ([][]int32, error) {
	have := int32(len(t.Partitions))
	if count <= have {
		return nil, fmt.Errorf("topic %q has %d partitions, the new count %d must be larger: %w", t.Name, have, count, kerr.InvalidPartitions)
	}
	rf := int16(1)
	if have > 0 {
		rf = int16(len(t.Partitions[0].Replicas))
	}
	return s.place(have, count-have, rf)
}

// place assigns partitions [first, first+count) on the active nodes.
func (s *State) place(first, count int32, rf int16) ([][]int32, error) {
	nodes := s.NodeIDs(true)
	if len(nodes) == 0 {
		return nil, fmt.Errorf("no active nodes to place replicas on: %w", kerr.InvalidReplicationFactor)
	}
	leaders := make(map[int32]int, len(nodes))
	replicas := make(map[int32]int, len(nodes))
	for _, t := range s.Topics {
		for _, p := range t.Partitions {
			if len(p.Replicas) > 0 {
				leaders[p.Replicas[0]]++
			}
			for _, r := range p.Replicas {
				replicas[r]++
			}
		}
	}
	start := 0
	for i, id := range nodes {
		if leaders[id] < leaders[nodes[start]] {
			start = i
		}
	}
	// Assign puts partition first's leader at (first+start) mod n; move
	// start back so that it lands on the least loaded node.
	start -= int(first)
	var best [][]int32
	bestMax, bestSquares := 0, 0
	for shift := range max(len(nodes)-1, 1) {
		as, err := Assign(nodes, first, count, rf, start, shift)
		if err != nil {
			return nil, err
		}
		load := make(map[int32]int, len(nodes))
		for _, rs := range as {
			for _, r := range rs {
				load[r]++
			}
		}
		hi, squares := 0, 0
		for _, id := range nodes {
			c := replicas[id] + load[id]
			hi = max(hi, c)
			squares += c * c
		}
		if best == nil || hi < bestMax || hi == bestMax && squares < bestSquares {
			best, bestMax, bestSquares = as, hi, squares
		}
	}
	return best, nil
}
