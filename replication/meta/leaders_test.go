package meta

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestRecordLeaders(t *testing.T) {
	s := Empty()
	apply := func(cmd Command) (*State, Result) {
		t.Helper()
		next, res := s.Apply(s.Version+1, cmd)
		if res.Err != nil {
			t.Fatalf("%s: %v", cmd.op(), res.Err)
		}
		s = next
		return next, res
	}
	apply(initCluster(1, 2, 3))
	apply(&CreateTopic{Name: "a", ID: TopicID{1}, Assignment: [][]int32{{1, 2}, {2, 3}}})
	apply(&CreateTopic{Name: "b", ID: TopicID{2}, Assignment: [][]int32{{3}}})
	untouched := s.Topics["b"]
	leader := func(topic string, partition int32) string {
		l, e, ok := s.Topics[topic].Partitions[partition].RecordedLeader()
		if !ok {
			return "none"
		}
		return fmt.Sprintf("%d@%d", l, e)
	}
	for _, tc := range []struct {
		name     string
		changes  []LeaderChange
		recorded int
		want     [2]string // a-0, a-1
	}{
		{"nothing recorded yet", nil, 0, [2]string{"none", "none"}},
		{"two partitions at once", []LeaderChange{{TopicID{1}, 0, 2, 3}, {TopicID{1}, 1, 3, 1}}, 2, [2]string{"2@3", "3@1"}},
		{"an older or equal epoch is stale", []LeaderChange{{TopicID{1}, 0, 1, 2}, {TopicID{1}, 1, 2, 1}}, 0, [2]string{"2@3", "3@1"}},
		{"a newer epoch wins", []LeaderChange{{TopicID{1}, 0, 1, 4}}, 1, [2]string{"1@4", "3@1"}},
		{"not a replica, unknown topic or partition, epoch 0: skipped", []LeaderChange{
			{TopicID{1}, 0, 3, 9}, {TopicID{9}, 0, 1, 9}, {TopicID{1}, 5, 1, 9}, {TopicID{1}, -1, 1, 9}, {TopicID{1}, 1, 2, 0}}, 0, [2]string{"1@4", "3@1"}},
		{"the latest of two changes in one batch", []LeaderChange{{TopicID{1}, 1, 2, 5}, {TopicID{1}, 1, 3, 6}}, 2, [2]string{"1@4", "3@6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res := apply(NewRecordLeaders(tc.changes))
			if res.Recorded != tc.recorded {
				t.Errorf("recorded %d changes, want %d", res.Recorded, tc.recorded)
			}
			if got := [2]string{leader("a", 0), leader("a", 1)}; got != tc.want {
				t.Errorf("leaders %v, want %v", got, tc.want)
			}
			if s.Topics["b"] != untouched {
				t.Error("a topic without changes was copied")
			}
		})
	}
	// Moved away, the recorded leader no longer counts.
	apply(&ReassignPartition{Topic: "a", Partition: 0, Replicas: []int32{2, 3}})
	if got := leader("a", 0); got != "none" {
		t.Fatalf("after a reassignment without node 1: leader %s, want none", got)
	}
	// A snapshot keeps what was recorded.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if l, e, ok := back.Topics["a"].Partitions[1].RecordedLeader(); !ok || l != 3 || e != 6 {
		t.Fatalf("after a JSON round trip: %d@%d %v", l, e, ok)
	}
}

// BenchmarkRecordLeaders measures one RecordLeaders of 1,000 elections
// applied to a state of 1,000 partitions (100 topics of 10, RF 3): what
// every node pays for a node's worth of failovers in one batch.
func BenchmarkRecordLeaders(b *testing.B) {
	s := Empty()
	s, _ = s.Apply(1, initCluster(1, 2, 3))
	var changes []LeaderChange
	for i := range 100 {
		id := TopicID{byte(i), byte(i >> 8), 1}
		var as [][]int32
		for p := range 10 {
			as = append(as, []int32{int32(1 + p%3), int32(1 + (p+1)%3), int32(1 + (p+2)%3)})
			changes = append(changes, LeaderChange{TopicID: id, Partition: int32(p), Leader: int32(1 + (p+1)%3), Epoch: 2})
		}
		s, _ = s.Apply(uint64(2+i), &CreateTopic{Name: fmt.Sprintf("t%03d", i), ID: id, Assignment: as})
	}
	cmd := NewRecordLeaders(changes)
	enc, err := Encode(cmd)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportMetric(float64(len(enc)), "entry-bytes")
		for range b.N {
			if _, err := Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("apply", func(b *testing.B) {
		for i := range b.N {
			if _, res := s.Apply(uint64(1000+i), cmd); res.Recorded != len(changes) {
				b.Fatalf("recorded %d of %d", res.Recorded, len(changes))
			}
		}
	})
}
