package meta

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func node(id int32) Node {
	return Node{ID: id, Host: "127.0.0.1", Port: 9090 + id, RaftAddress: "raft-" + string(rune('0'+id)), State: NodeActive}
}

func initCluster(ids ...int32) *InitCluster {
	c := &InitCluster{ClusterID: "cluster-a"}
	for _, id := range ids {
		c.Nodes = append(c.Nodes, node(id))
	}
	return c
}

// step is one command of a scenario, what Apply must answer, and a check
// of the state after it.
type step struct {
	cmd     Command
	wantErr error // nil for success, else errors.Is target
	check   func(t *testing.T, s *State, r Result)
}

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"commands before init are refused", []step{
			{cmd: &CreateTopic{Name: "t", ID: TopicID{1}, Assignment: [][]int32{{1}}}, wantErr: kerr.InvalidRequest},
			{cmd: &InitCluster{}, wantErr: kerr.InvalidRequest},
			{cmd: initCluster(1), check: func(t *testing.T, s *State, _ Result) {
				if s.ClusterID != "cluster-a" || len(s.Nodes) != 1 || s.Nodes[1].State != NodeActive {
					t.Fatalf("state after init: %+v", s)
				}
			}},
			{cmd: initCluster(2), wantErr: kerr.InvalidRequest},
		}},
		{"init refuses duplicate nodes", []step{
			{cmd: initCluster(1, 1), wantErr: kerr.DuplicateBrokerRegistration},
			{cmd: &InitCluster{ClusterID: "c", Nodes: []Node{node(1), {ID: 2, Host: "h", Port: 1, RaftAddress: node(1).RaftAddress}}}, wantErr: kerr.DuplicateBrokerRegistration},
		}},
		{"topic lifecycle", []step{
			{cmd: initCluster(1, 2, 3)},
			{cmd: &CreateTopic{Name: "orders", ID: TopicID{1}, Configs: map[string]string{"retention.ms": "10"}, Assignment: [][]int32{{1, 2}, {2, 3}}}, check: func(t *testing.T, s *State, _ Result) {
				tp, ok := s.Topic("orders")
				if !ok || len(tp.Partitions) != 2 || tp.Configs["retention.ms"] != "10" {
					t.Fatalf("orders: %+v", tp)
				}
				if byID, ok := s.TopicByID(TopicID{1}); !ok || byID != tp {
					t.Fatal("TopicByID does not find orders")
				}
			}},
			{cmd: &CreateTopic{Name: "orders", ID: TopicID{2}, Assignment: [][]int32{{1}}}, wantErr: kerr.TopicAlreadyExists},
			{cmd: &CreateTopic{Name: "other", ID: TopicID{1}, Assignment: [][]int32{{1}}}, wantErr: kerr.InconsistentTopicID},
			{cmd: &CreateTopic{Name: "zero", Assignment: [][]int32{{1}}}, wantErr: kerr.InvalidRequest},
			{cmd: &CreateTopic{Name: "bad/name", ID: TopicID{3}, Assignment: [][]int32{{1}}}, wantErr: kerr.InvalidTopicException},
			{cmd: &CreateTopic{Name: "none", ID: TopicID{3}}, wantErr: kerr.InvalidPartitions},
			{cmd: &CreateTopic{Name: "dup", ID: TopicID{3}, Assignment: [][]int32{{1, 1}}}, wantErr: kerr.InvalidReplicaAssignment},
			{cmd: &CreateTopic{Name: "ghost", ID: TopicID{3}, Assignment: [][]int32{{9}}}, wantErr: kerr.InvalidReplicaAssignment},
			{cmd: &CreateTopic{Name: "empty", ID: TopicID{3}, Assignment: [][]int32{{}}}, wantErr: kerr.InvalidReplicaAssignment},
			{cmd: &CreatePartitions{Topic: "orders", Count: 2, Assignment: nil}, wantErr: kerr.InvalidPartitions},
			{cmd: &CreatePartitions{Topic: "orders", Count: 4, Assignment: [][]int32{{3}}}, wantErr: kerr.InvalidReplicaAssignment},
			{cmd: &CreatePartitions{Topic: "nope", Count: 4, Assignment: [][]int32{{3}}}, wantErr: kerr.UnknownTopicOrPartition},
			{cmd: &CreatePartitions{Topic: "orders", Count: 4, Assignment: [][]int32{{3, 1}, {1, 2}}}, check: func(t *testing.T, s *State, _ Result) {
				want := []Partition{{Replicas: []int32{1, 2}}, {Replicas: []int32{2, 3}}, {Replicas: []int32{3, 1}}, {Replicas: []int32{1, 2}}}
				if got := s.Topics["orders"].Partitions; !reflect.DeepEqual(got, want) {
					t.Fatalf("partitions %v, want %v", got, want)
				}
			}},
			{cmd: &AlterTopicConfigs{Topic: "orders", Configs: map[string]string{"cleanup.policy": "compact"}}, check: func(t *testing.T, s *State, _ Result) {
				if got := s.Topics["orders"].Configs; !reflect.DeepEqual(got, map[string]string{"cleanup.policy": "compact"}) {
					t.Fatalf("configs %v: AlterTopicConfigs replaces, not merges", got)
				}
			}},
			{cmd: &AlterTopicConfigs{Topic: "nope"}, wantErr: kerr.UnknownTopicOrPartition},
			{cmd: &ReassignPartition{Topic: "orders", Partition: 1, Replicas: []int32{3, 1}}, check: func(t *testing.T, s *State, _ Result) {
				if got := s.Topics["orders"].Partitions[1].Replicas; !reflect.DeepEqual(got, []int32{3, 1}) {
					t.Fatalf("replicas %v", got)
				}
			}},
			{cmd: &ReassignPartition{Topic: "orders", Partition: 4, Replicas: []int32{3}}, wantErr: kerr.UnknownTopicOrPartition},
			{cmd: &ReassignPartition{Topic: "orders", Partition: 0, Replicas: []int32{3, 3}}, wantErr: kerr.InvalidReplicaAssignment},
			{cmd: &DeleteTopic{Name: "orders", ID: TopicID{9}}, wantErr: kerr.UnknownTopicID},
			{cmd: &DeleteTopic{Name: "orders", ID: TopicID{1}}, check: func(t *testing.T, s *State, _ Result) {
				if _, ok := s.TopicByID(TopicID{1}); ok || len(s.Topics) != 0 {
					t.Fatal("orders still there")
				}
			}},
			{cmd: &DeleteTopic{Name: "orders"}, wantErr: kerr.UnknownTopicOrPartition},
		}},
		{"internal topics stay", []step{
			{cmd: initCluster(1)},
			{cmd: &CreateTopic{Name: "__consumer_offsets", ID: TopicID{7}, Internal: true, Assignment: [][]int32{{1}}}},
			{cmd: &DeleteTopic{Name: "__consumer_offsets"}, wantErr: kerr.InvalidTopicException},
		}},
		{"node membership", []step{
			{cmd: initCluster(1, 2)},
			{cmd: &RegisterNode{ClusterID: "cluster-b", Node: node(3)}, wantErr: kerr.InconsistentClusterID},
			{cmd: &RegisterNode{Node: Node{ID: 2, Host: "h", Port: 1, RaftAddress: "elsewhere"}}, wantErr: kerr.DuplicateBrokerRegistration},
			{cmd: &RegisterNode{Node: Node{ID: 4, Host: "h", Port: 1, RaftAddress: node(2).RaftAddress}}, wantErr: kerr.DuplicateBrokerRegistration},
			{cmd: &RegisterNode{Node: Node{ID: 4, Host: "", Port: 1, RaftAddress: "x"}}, wantErr: kerr.InvalidRequest},
			{cmd: &RegisterNode{ClusterID: "cluster-a", Node: node(3)}},
			{cmd: &RegisterNode{Node: Node{ID: 3, Host: "new-host", Port: 1, RaftAddress: node(3).RaftAddress}}, check: func(t *testing.T, s *State, _ Result) {
				if n := s.Nodes[3]; n.Host != "new-host" || n.State != NodeActive {
					t.Fatalf("re-registered node: %+v", n)
				}
			}},
			{cmd: &CreateTopic{Name: "t", ID: TopicID{1}, Assignment: [][]int32{{3, 1}}}},
			{cmd: &RemoveNode{NodeID: 3}, wantErr: kerr.InvalidRequest},
			{cmd: &MarkNodeLeaving{NodeID: 9}, wantErr: kerr.BrokerIDNotRegistered},
			{cmd: &MarkNodeLeaving{NodeID: 3}, check: func(t *testing.T, s *State, _ Result) {
				if s.Nodes[3].State != NodeLeaving || !reflect.DeepEqual(s.NodeIDs(true), []int32{1, 2}) {
					t.Fatalf("nodes %+v", s.Nodes)
				}
			}},
			{cmd: &RegisterNode{Node: node(3)}, check: func(t *testing.T, s *State, _ Result) {
				if s.Nodes[3].State != NodeLeaving {
					t.Fatal("re-registering cancelled leaving")
				}
			}},
			{cmd: &RemoveNode{NodeID: 3}, wantErr: kerr.ReassignmentInProgress},
			{cmd: &ReassignPartition{Topic: "t", Partition: 0, Replicas: []int32{2, 1}}},
			{cmd: &AlterBrokerConfigs{NodeID: 3, Configs: map[string]string{"log.retention.ms": "1"}}},
			{cmd: &RemoveNode{NodeID: 3}, check: func(t *testing.T, s *State, _ Result) {
				if _, ok := s.Nodes[3]; ok || s.BrokerConfigsOf(3) != nil {
					t.Fatal("node 3 or its configs still there")
				}
			}},
			{cmd: &RemoveNode{NodeID: 3}, wantErr: kerr.BrokerIDNotRegistered},
		}},
		{"configs and producer ids", []step{
			{cmd: &InitCluster{ClusterID: "c", Nodes: []Node{node(1)}, NextProducerID: 5000}},
			{cmd: &AllocateProducerIDBlock{NodeID: 1, Size: 1000}, check: func(t *testing.T, s *State, r Result) {
				if r.ProducerIDs != (ProducerIDBlock{NodeID: 1, First: 5000, Size: 1000}) || s.NextProducerID != 6000 {
					t.Fatalf("block %+v, next %d", r.ProducerIDs, s.NextProducerID)
				}
			}},
			{cmd: &AllocateProducerIDBlock{NodeID: 1, Size: 0}, wantErr: kerr.InvalidRequest},
			{cmd: &AllocateProducerIDBlock{NodeID: 2, Size: 10}, check: func(t *testing.T, s *State, r Result) {
				if r.ProducerIDs.First != 6000 || s.NextProducerID != 6010 {
					t.Fatalf("block %+v, next %d", r.ProducerIDs, s.NextProducerID)
				}
			}},
			{cmd: &AlterBrokerConfigs{NodeID: DefaultBrokerNode, Configs: map[string]string{"log.retention.ms": "5"}}},
			{cmd: &AlterBrokerConfigs{NodeID: 1, Configs: map[string]string{"log.cleaner.enable": "false"}}},
			{cmd: &AlterBrokerConfigs{NodeID: -2}, wantErr: kerr.InvalidRequest},
			{cmd: &AlterBrokerConfigs{NodeID: 1, Configs: map[string]string{}}, check: func(t *testing.T, s *State, _ Result) {
				if s.BrokerConfigsOf(1) != nil || s.Brokers.Default["log.retention.ms"] != "5" {
					t.Fatalf("broker configs %+v", s.Brokers)
				}
			}},
			{cmd: &AlterGroupConfigs{Group: "g", Configs: map[string]string{"share.delivery.count.limit": "3"}}},
			{cmd: &AlterGroupConfigs{Group: "h", Configs: map[string]string{"share.auto.offset.reset": "earliest"}}},
			{cmd: &AlterGroupConfigs{Configs: map[string]string{"x": "y"}}, wantErr: kerr.InvalidRequest},
			{cmd: &AlterGroupConfigs{Group: "g"}, check: func(t *testing.T, s *State, _ Result) {
				if s.GroupConfigsOf("g") != nil || s.GroupConfigsOf("h")["share.auto.offset.reset"] != "earliest" {
					t.Fatalf("group configs %+v", s.GroupConfigs)
				}
			}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Empty()
			for i, st := range tc.steps {
				before := mustSnapshot(t, s)
				next, res := s.Apply(uint64(i+1), st.cmd)
				if next.Version != uint64(i+1) || res.Version != uint64(i+1) {
					t.Fatalf("step %d: version %d/%d", i, next.Version, res.Version)
				}
				switch {
				case st.wantErr == nil && res.Err != nil:
					t.Fatalf("step %d %s: %v", i, st.cmd.op(), res.Err)
				case st.wantErr != nil && !errors.Is(res.Err, st.wantErr):
					t.Fatalf("step %d %s: err %v, want %v", i, st.cmd.op(), res.Err, st.wantErr)
				case st.wantErr != nil && !bytes.Equal(mustSnapshot(t, withVersion(next, s.Version)), before):
					t.Fatalf("step %d %s: refused command changed the state", i, st.cmd.op())
				}
				// Apply must never modify the state it was given.
				if !bytes.Equal(mustSnapshot(t, s), before) {
					t.Fatalf("step %d %s: Apply modified its input state", i, st.cmd.op())
				}
				checkInvariants(t, next)
				if st.check != nil {
					st.check(t, next, res)
				}
				// Every state survives a snapshot round trip.
				b := mustSnapshot(t, next)
				restored, err := DecodeSnapshot(b)
				if err != nil {
					t.Fatalf("step %d: restore: %v", i, err)
				}
				if !reflect.DeepEqual(restored, next) {
					t.Fatalf("step %d: restored state differs:\n%+v\n%+v", i, restored, next)
				}
				s = next
			}
		})
	}
}

func TestAssigned(t *testing.T) {
	s := Empty()
	steps := []Command{
		initCluster(1, 2, 3),
		&CreateTopic{Name: "b", ID: TopicID{2}, Assignment: [][]int32{{1, 2}, {2, 3}, {3, 1}}},
		&CreateTopic{Name: "a", ID: TopicID{1}, Assignment: [][]int32{{3}}},
	}
	for i, cmd := range steps {
		var res Result
		if s, res = s.Apply(uint64(i+1), cmd); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	before := s.Assigned(3)
	want := []PartitionRef{{TopicID{1}, "a", 0}, {TopicID{2}, "b", 1}, {TopicID{2}, "b", 2}}
	if !reflect.DeepEqual(before, want) {
		t.Fatalf("Assigned(3) = %v, want %v", before, want)
	}
	// Recreating "a" under a new id shows as another partition.
	s, _ = s.Apply(4, &DeleteTopic{Name: "a"})
	s, _ = s.Apply(5, &CreateTopic{Name: "a", ID: TopicID{9}, Assignment: [][]int32{{3}}})
	if got := s.Assigned(3)[0]; got == before[0] || got.Topic != "a" {
		t.Fatalf("recreated topic: %v, was %v", got, before[0])
	}
	if got := s.Assigned(7); got != nil {
		t.Fatalf("unknown node has %v", got)
	}
}
