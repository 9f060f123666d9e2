package meta

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestAssignKafkaLayout(t *testing.T) {
	// Kafka's documented example (AdminUtils): 5 brokers, 10 partitions,
	// 3 replicas, start 0, shift 0.
	got, err := Assign([]int32{0, 1, 2, 3, 4}, 0, 10, 3, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int32{
		{0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1},
		{0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestAssignProperties(t *testing.T) {
	for _, tc := range []struct {
		nodes      []int32
		partitions int32
		rf         int16
	}{
		{[]int32{1}, 1, 1},
		{[]int32{1, 2, 3}, 1, 3},
		{[]int32{1, 2, 3}, 12, 3},
		{[]int32{1, 2, 3}, 100, 2},
		{[]int32{4, 7, 9, 12, 20}, 50, 3},
		{[]int32{1, 2, 3, 4, 5, 6, 7}, 700, 3},
	} {
		for start := range len(tc.nodes) {
			for shift := range len(tc.nodes) {
				name := fmt.Sprintf("n%d-p%d-rf%d-start%d-shift%d", len(tc.nodes), tc.partitions, tc.rf, start, shift)
				t.Run(name, func(t *testing.T) {
					as, err := Assign(tc.nodes, 0, tc.partitions, tc.rf, start, shift)
					if err != nil {
						t.Fatal(err)
					}
					leaders := map[int32]int{}
					replicas := map[int32]int{}
					for p, rs := range as {
						if len(rs) != int(tc.rf) {
							t.Fatalf("partition %d has %v", p, rs)
						}
						seen := map[int32]bool{}
						for _, r := range rs {
							if seen[r] {
								t.Fatalf("partition %d repeats node %d: %v", p, r, rs)
							}
							seen[r] = true
							replicas[r]++
						}
						leaders[rs[0]]++
					}
					spread(t, "leaders", tc.nodes, leaders, 1)
					// Followers of a round spread over all other nodes: the
					// replica count differs by at most rf between nodes.
					spread(t, "replicas", tc.nodes, replicas, int(tc.rf))
				})
			}
		}
	}
}

// spread fails unless every node has a count and they differ by at most
// slack (all when there are at least as many items as nodes).
func spread(t *testing.T, what string, nodes []int32, counts map[int32]int, slack int) {
	t.Helper()
	lo, hi := -1, 0
	total := 0
	for _, n := range nodes {
		c := counts[n]
		total += c
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	if total >= len(nodes)*slack && hi-lo > slack {
		t.Fatalf("%s unbalanced: %v (min %d, max %d)", what, counts, lo, hi)
	}
}

func TestAssignRefuses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		nodes      []int32
		first, n   int32
		rf         int16
		wantReason error
	}{
		{"rf above nodes", []int32{1, 2}, 0, 1, 3, kerr.InvalidReplicationFactor},
		{"rf zero", []int32{1, 2}, 0, 1, 0, kerr.InvalidReplicationFactor},
		{"no nodes", nil, 0, 1, 1, kerr.InvalidReplicationFactor},
		{"no partitions", []int32{1}, 0, 0, 1, kerr.InvalidPartitions},
		{"too many", []int32{1}, 0, MaxPartitions + 1, 1, kerr.InvalidPartitions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Assign(tc.nodes, tc.first, tc.n, tc.rf, 0, 0); !errors.Is(err, tc.wantReason) {
				t.Fatalf("err %v, want %v", err, tc.wantReason)
			}
		})
	}
}

// TestPlaceBalancesLeadersAcrossTopics creates many topics of awkward
// partition counts through Place and CreateTopic and checks that leaders
// and replicas stay balanced over the cluster, skipping leaving nodes.
func TestPlaceBalancesLeadersAcrossTopics(t *testing.T) {
	s := Empty()
	s, _ = s.Apply(1, initCluster(1, 2, 3, 4, 5))
	s, _ = s.Apply(2, &MarkNodeLeaving{NodeID: 5})
	v := uint64(3)
	for i := range 300 {
		count := int32(1 + i%4)
		as, err := s.Place(count, 3)
		if err != nil {
			t.Fatal(err)
		}
		var res Result
		s, res = s.Apply(v, &CreateTopic{Name: fmt.Sprint("t", i), ID: TopicID{byte(i), byte(i >> 8), 1}, Assignment: as})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		v++
		if i%50 == 49 {
			// Grow a topic now and then, as CreatePartitions would.
			tp := s.Topics[fmt.Sprint("t", i)]
			more, err := s.PlaceMore(tp, int32(len(tp.Partitions))+3)
			if err != nil {
				t.Fatal(err)
			}
			s, res = s.Apply(v, &CreatePartitions{Topic: tp.Name, Count: int32(len(tp.Partitions)) + 3, Assignment: more})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			v++
		}
	}
	leaders, replicas := map[int32]int{}, map[int32]int{}
	for _, tp := range s.Topics {
		for _, p := range tp.Partitions {
			leaders[p.Replicas[0]]++
			for _, r := range p.Replicas {
				replicas[r]++
			}
		}
	}
	if leaders[5] != 0 || replicas[5] != 0 {
		t.Fatalf("leaving node 5 got %d leaders, %d replicas", leaders[5], replicas[5])
	}
	active := []int32{1, 2, 3, 4}
	spread(t, "leaders", active, leaders, 1)
	spread(t, "replicas", active, replicas, 3*len(active))
	t.Logf("leaders %v replicas %v", leaders, replicas)
}

func TestPlaceIsDeterministic(t *testing.T) {
	s := fuzzBaseState(t)
	a, err := s.Place(7, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Place(7, 2)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("Place differs on the same state: %v / %v", a, b)
	}
}
