package meta

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// everyCommand has one non-trivial value of every command type.
func everyCommand() []Command {
	return []Command{
		&InitCluster{ClusterID: "c1", Nodes: []Node{{ID: 1, Host: "h1", Port: 9092, RaftAddress: "r1", State: NodeActive}},
			Topics:         []*Topic{{Name: "t", ID: TopicID{1}, Configs: map[string]string{"retention.ms": "1"}, Partitions: []Partition{{Replicas: []int32{1}}}}},
			DefaultConfigs: map[string]string{"log.retention.ms": "5"}, NodeConfigs: map[int32]map[string]string{1: {"a": "b"}}, NextProducerID: 1000},
		&RegisterNode{ClusterID: "c1", Node: Node{ID: 2, Host: "h2", Port: 9093, RaftAddress: "r2", Rack: "a", State: NodeActive}},
		&MarkNodeLeaving{NodeID: 2},
		&RemoveNode{NodeID: 2},
		&CreateTopic{Name: "orders", ID: TopicID{0xab, 2}, Internal: true, Configs: map[string]string{"cleanup.policy": "compact"}, Assignment: [][]int32{{1, 2}, {2, 1}}},
		&DeleteTopic{Name: "orders", ID: TopicID{0xab, 2}},
		&DeleteTopic{Name: "orders"},
		&CreatePartitions{Topic: "orders", Count: 3, Assignment: [][]int32{{1, 2}}},
		&AlterTopicConfigs{Topic: "orders", Configs: map[string]string{"retention.ms": "100"}},
		&AlterBrokerConfigs{NodeID: DefaultBrokerNode, Configs: map[string]string{"log.retention.ms": "9"}},
		&AllocateProducerIDBlock{NodeID: 1, Size: 1000},
		&ReassignPartition{Topic: "orders", Partition: 1, Replicas: []int32{2, 3}},
		NewRecordLeaders([]LeaderChange{{TopicID: TopicID{0xab, 2}, Partition: 1, Leader: 2, Epoch: 7}, {TopicID: TopicID{0xab, 2}, Partition: 0, Leader: 1, Epoch: 3}}),
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, cmd := range everyCommand() {
		t.Run(cmd.op(), func(t *testing.T) {
			b, err := Encode(cmd)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if !reflect.DeepEqual(got, cmd) {
				t.Fatalf("round trip of %s:\n got %#v\nwant %#v", b, got, cmd)
			}
			// A value encodes as its pointer does.
			vb, err := Encode(reflect.ValueOf(cmd).Elem().Interface().(Command))
			if err != nil || !bytes.Equal(vb, b) {
				t.Fatalf("value encoding %s differs from pointer encoding %s (%v)", vb, b, err)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"empty", ``},
		{"not json", `create_topic`},
		{"array", `[]`},
		{"no version", `{"op":"remove_node","args":{"node_id":1}}`},
		{"newer version", `{"v":2,"op":"remove_node","args":{"node_id":1}}`},
		{"unknown op", `{"v":1,"op":"launch","args":{}}`},
		{"unknown envelope field", `{"v":1,"op":"remove_node","args":{"node_id":1},"x":1}`},
		{"unknown args field", `{"v":1,"op":"remove_node","args":{"node_id":1,"force":true}}`},
		{"wrong type", `{"v":1,"op":"remove_node","args":{"node_id":"1"}}`},
		{"trailing data", `{"v":1,"op":"remove_node","args":{"node_id":1}}{}`},
		{"trailing bracket", `{"v":1,"op":"remove_node","args":{"node_id":1}}]`},
		{"bad topic id", `{"v":1,"op":"delete_topic","args":{"name":"t","id":"zz"}}`},
		{"short topic id", `{"v":1,"op":"delete_topic","args":{"name":"t","id":"00"}}`},
		{"node id overflow", `{"v":1,"op":"remove_node","args":{"node_id":4294967296}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := Decode([]byte(tc.in))
			if !errors.Is(err, ErrMalformedCommand) {
				t.Fatalf("Decode(%s) = %#v, %v; want ErrMalformedCommand", tc.in, cmd, err)
			}
		})
	}
}

// FuzzDecodeCommand checks that Decode never panics, and that whatever it
// accepts re-encodes to bytes that decode to the same command and encode
// to themselves (the encoding is canonical after one round), and applies
// to a state without panicking, deterministically.
func FuzzDecodeCommand(f *testing.F) {
	for _, cmd := range everyCommand() {
		b, err := Encode(cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"op":"create_topic","args":{"name":"x","id":"00000000000000000000000000000001","assignment":[[1,1]]}}`))
	f.Add([]byte(`{"v":1,"op":"init_cluster","args":{"cluster_id":"c","nodes":[{"id":1,"host":"h","port":1,"raft_address":"a"},{"id":1,"host":"h","port":1,"raft_address":"b"}]}}`))
	f.Add([]byte(`{"v":1,"op":"create_topic","args":null}`))
	base := fuzzBaseState(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedCommand) {
				t.Fatalf("Decode error %v does not wrap ErrMalformedCommand", err)
			}
			return
		}
		b2, err := Encode(cmd)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", cmd, err)
		}
		cmd2, err := Decode(b2)
		if err != nil {
			t.Fatalf("decode re-encoded %s: %v", b2, err)
		}
		if !reflect.DeepEqual(cmd, cmd2) {
			t.Fatalf("round trip changed the command:\n%#v\n%#v", cmd, cmd2)
		}
		b3, _ := Encode(cmd2)
		if !bytes.Equal(b2, b3) {
			t.Fatalf("encoding not canonical:\n%s\n%s", b2, b3)
		}
		s1, r1 := base.Apply(base.Version+1, cmd)
		s2, r2 := base.Apply(base.Version+1, cmd2)
		if (r1.Err == nil) != (r2.Err == nil) || r1.ProducerIDs != r2.ProducerIDs || !bytes.Equal(mustSnapshot(t, s1), mustSnapshot(t, s2)) {
			t.Fatalf("applying the same command twice differed: %v / %v", r1.Err, r2.Err)
		}
		if r1.Err != nil && !bytes.Equal(mustSnapshot(t, withVersion(base, s1.Version)), mustSnapshot(t, s1)) {
			t.Fatalf("refused command %s changed the state: %v", b, r1.Err)
		}
		checkInvariants(t, s1)
	})
}

func fuzzBaseState(tb testing.TB) *State {
	tb.Helper()
	s := Empty()
	for i, cmd := range []Command{
		&InitCluster{ClusterID: "c1", Nodes: []Node{{ID: 1, Host: "h1", Port: 9092, RaftAddress: "r1"}, {ID: 2, Host: "h2", Port: 9092, RaftAddress: "r2"}, {ID: 3, Host: "h3", Port: 9092, RaftAddress: "r3"}}},
		&CreateTopic{Name: "orders", ID: TopicID{0xab, 2}, Assignment: [][]int32{{1, 2}, {2, 3}}},
	} {
		var res Result
		s, res = s.Apply(uint64(i+1), cmd)
		if res.Err != nil {
			tb.Fatalf("base state: %v", res.Err)
		}
	}
	return s
}

// withVersion returns a copy of s at another version.
func withVersion(s *State, v uint64) *State {
	c := s.clone()
	c.Version = v
	return c
}

func mustSnapshot(tb testing.TB, s *State) []byte {
	tb.Helper()
	b, err := EncodeSnapshot(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// checkInvariants asserts what every state reachable by Apply satisfies.
func checkInvariants(tb testing.TB, s *State) {
	tb.Helper()
	if len(s.topicsByID) != len(s.Topics) {
		tb.Fatalf("%d topics but %d ids", len(s.Topics), len(s.topicsByID))
	}
	for name, t := range s.Topics {
		if t.Name != name || s.topicsByID[t.ID] != t || t.ID.IsZero() {
			tb.Fatalf("topic %q misfiled (name %q, id %s)", name, t.Name, t.ID)
		}
		if len(t.Partitions) == 0 || len(t.Partitions) > MaxPartitions {
			tb.Fatalf("topic %q has %d partitions", name, len(t.Partitions))
		}
		for i, p := range t.Partitions {
			if len(p.Replicas) == 0 {
				tb.Fatalf("partition %s-%d has no replicas", name, i)
			}
			seen := map[int32]bool{}
			for _, r := range p.Replicas {
				if _, ok := s.Nodes[r]; !ok || seen[r] {
					tb.Fatalf("partition %s-%d has replicas %v: unknown or repeated node", name, i, p.Replicas)
				}
				seen[r] = true
			}
			if err := p.checkReassignment(); err != nil {
				tb.Fatalf("partition %s-%d: %v", name, i, err)
			}
		}
	}
	for id, n := range s.Nodes {
		if n.ID != id {
			tb.Fatalf("node %d misfiled as %d", n.ID, id)
		}
	}
}
