package meta

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// partitionIs returns a step check that partition p of topic "t" is want.
func partitionIs(p int32, want Partition) func(t *testing.T, s *State, _ Result) {
	return func(t *testing.T, s *State, _ Result) {
		t.Helper()
		if got := s.Topics["t"].Partitions[p]; !reflect.DeepEqual(got, want) {
			t.Fatalf("partition %d is %+v, want %+v", p, got, want)
		}
	}
}

func TestReassignment(t *testing.T) {
	steps := []step{
		{cmd: initCluster(1, 2, 3, 4)},
		{cmd: &CreateTopic{Name: "t", ID: TopicID{1}, Assignment: [][]int32{{1, 2}, {2, 3}}}},
		{cmd: &AlterReassignment{Topic: "t", Partition: 0}, wantErr: kerr.NoReassignmentInProgress},
		{cmd: &AlterReassignment{Topic: "t", Partition: 0, Target: []int32{}}, wantErr: kerr.InvalidReplicaAssignment},
		{cmd: &AlterReassignment{Topic: "t", Partition: 0, Target: []int32{3, 3}}, wantErr: kerr.InvalidReplicaAssignment},
		{cmd: &AlterReassignment{Topic: "t", Partition: 0, Target: []int32{9}}, wantErr: kerr.InvalidReplicaAssignment},
		{cmd: &AlterReassignment{Topic: "t", Partition: 5, Target: []int32{1}}, wantErr: kerr.UnknownTopicOrPartition},
		{cmd: &AlterReassignment{Topic: "nope", Partition: 0, Target: []int32{1}}, wantErr: kerr.UnknownTopicOrPartition},
		// Moving 1 away to 3: 3 is added, 1 removed; the target comes first.
		{cmd: &AlterReassignment{Topic: "t", Partition: 0, Target: []int32{2, 3}},
			check: partitionIs(0, Partition{Replicas: []int32{2, 3, 1}, Adding: []int32{3}, Removing: []int32{1}, Moved: true})},
		{cmd: &CompleteReassignment{Topic: "t", Partition: 0, Target: []int32{2, 4}}, wantErr: kerr.InvalidReplicaAssignment},
		// A new target replaces the one in progress, from the original.
		{cmd: &AlterReassignment{Topic: "t", Partition: 0, Target: []int32{4, 1}},
			check: partitionIs(0, Partition{Replicas: []int32{4, 1, 2}, Adding: []int32{4}, Removing: []int32{2}, Moved: true})},
		{cmd: &AlterReassignment{Topic: "t", Partition: 0},
			check: partitionIs(0, Partition{Replicas: []int32{1, 2}, Moved: true})},
		{cmd: &CompleteReassignment{Topic: "t", Partition: 0, Target: []int32{1, 2}}, wantErr: kerr.NoReassignmentInProgress},
		// The same replicas in another order: only the preferred leader
		// changes, nothing moves.
		{cmd: &AlterReassignment{Topic: "t", Partition: 1, Target: []int32{3, 2}},
			check: partitionIs(1, Partition{Replicas: []int32{3, 2}, Moved: true})},
		{cmd: &AlterReassignment{Topic: "t", Partition: 1, Target: []int32{4}},
			check: func(t *testing.T, s *State, r Result) {
				partitionIs(1, Partition{Replicas: []int32{4, 3, 2}, Adding: []int32{4}, Removing: []int32{3, 2}, Moved: true})(t, s, r)
				if got := s.Reassigning(); len(got) != 1 || got[0].Partition != 1 {
					t.Fatalf("Reassigning = %v", got)
				}
				if got := s.Assigned(4); len(got) != 1 {
					t.Fatalf("an added replica is assigned: Assigned(4) = %v", got)
				}
			}},
		{cmd: &MarkNodeLeaving{NodeID: 3}},
		{cmd: &RemoveNode{NodeID: 3}, wantErr: kerr.ReassignmentInProgress},
		{cmd: &CompleteReassignment{Topic: "t", Partition: 1, Target: []int32{4}},
			check: func(t *testing.T, s *State, r Result) {
				partitionIs(1, Partition{Replicas: []int32{4}, Moved: true})(t, s, r)
				if got := s.Reassigning(); got != nil {
					t.Fatalf("Reassigning = %v", got)
				}
			}},
		{cmd: &RemoveNode{NodeID: 3}},
	}
	s := Empty()
	for i, st := range steps {
		next, res := s.Apply(uint64(i+1), st.cmd)
		switch {
		case st.wantErr == nil && res.Err != nil:
			t.Fatalf("step %d %s: %v", i, st.cmd.op(), res.Err)
		case st.wantErr != nil && (res.Err == nil || !reflect.DeepEqual(unwrapKerr(res.Err), st.wantErr)):
			t.Fatalf("step %d %s: err %v, want %v", i, st.cmd.op(), res.Err, st.wantErr)
		}
		checkInvariants(t, next)
		if st.check != nil {
			st.check(t, next, res)
		}
		restored, err := DecodeSnapshot(mustSnapshot(t, next))
		if err != nil || !reflect.DeepEqual(restored, next) {
			t.Fatalf("step %d: snapshot round trip: %v", i, err)
		}
		s = next
	}
}

// unwrapKerr returns the *kerr.Error err wraps, or err.
func unwrapKerr(err error) error {
	for e := err; e != nil; {
		if k, ok := e.(*kerr.Error); ok {
			return k
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}

func TestReassignmentEncoding(t *testing.T) {
	for _, cmd := range []Command{
		&AlterReassignment{Topic: "t", Partition: 1, Target: []int32{2, 3}},
		&AlterReassignment{Topic: "t", Partition: 1},
		&CompleteReassignment{Topic: "t", Partition: 1, Target: []int32{2}},
	} {
		b, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil || !reflect.DeepEqual(got, cmd) {
			t.Fatalf("round trip of %s: %+v, %v", b, got, err)
		}
	}
	// Cancel (null) and an empty target must stay apart.
	b, _ := Encode(&AlterReassignment{Topic: "t", Target: []int32{}})
	if got, _ := Decode(b); got.(*AlterReassignment).Target == nil {
		t.Fatalf("%s decodes as a cancel", b)
	}
}
