package meta

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// AlterReassignment starts, changes or cancels the reassignment of one
// partition, as Kafka's AlterPartitionReassignments does for it.
//
// With a Target, the partition's Replicas become the target followed by
// the original replicas not in it, Adding the target replicas not among
// the original ones and Removing the original replicas not in the target.
// The original replicas are the current ones without those a reassignment
// in progress was adding, so a new target replaces an old one. A target
// with the same replicas as the original ones (in any order) takes effect
// at once: nothing moves, the order (preferred leader first) is the
// target's, and a reassignment in progress is dropped.
//
// A nil Target cancels the reassignment in progress (the Replicas go back
// to the original ones); with none it is refused with
// kerr.NoReassignmentInProgress. An empty Target, a repeated replica or
// one that is not a registered node is kerr.InvalidReplicaAssignment.
//
// Moving the data is the reaction of the partition's Raft leader, outside
// Apply (package replication); CompleteReassignment ends it.
type AlterReassignment struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Target    []int32 `json:"target"`
}

// CompleteReassignment finalises a reassignment once the partition's Raft
// group has exactly the target replicas as voters: Replicas become
// Target, in its order, and Adding and Removing empty. It is refused with
// kerr.NoReassignmentInProgress when none is in progress, and with
// kerr.InvalidReplicaAssignment when Target is not the one in progress
// (the reassignment was changed meanwhile: the leader goes on with the
// new one).
type CompleteReassignment struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Target    []int32 `json:"target"`
}

// Reassigning reports whether a reassignment of the partition is in
// progress.
func (p Partition) Reassigning() bool { return len(p.Adding) > 0 || len(p.Removing) > 0 }

// Target returns the replicas the partition is to have: Replicas without
// Removing, in order (the preferred leader first). The slice is the
// caller's.
func (p Partition) Target() []int32 { return without(p.Replicas, p.Removing) }

// Original returns the replicas the partition had before the reassignment
// in progress: Replicas without Adding, in order. The slice is the
// caller's.
func (p Partition) Original() []int32 { return without(p.Replicas, p.Adding) }

// Reassigning returns the partitions with a reassignment in progress,
// sorted by topic then partition. The slice is the caller's.
func (s *State) Reassigning() []PartitionRef {
	var refs []PartitionRef
	for _, name := range s.TopicNames() {
		t := s.Topics[name]
		for i, p := range t.Partitions {
			if p.Reassigning() {
				refs = append(refs, PartitionRef{TopicID: t.ID, Topic: name, Partition: int32(i)})
			}
		}
	}
	return refs
}

// without returns the elements of list not in drop, in list's order.
func without(list, drop []int32) []int32 {
	out := make([]int32, 0, len(list))
	for _, r := range list {
		if !slices.Contains(drop, r) {
			out = append(out, r)
		}
	}
	return out
}

// sameSet reports whether a and b hold the same elements (neither repeats
// one).
func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, r := range a {
		if !slices.Contains(b, r) {
			return false
		}
	}
	return true
}

// checkReassignment checks what validate requires of a partition's
// reassignment fields: Adding and Removing within Replicas, disjoint,
// and something left once Removing goes.
func (p Partition) checkReassignment() error {
	for _, r := range append(append([]int32(nil), p.Adding...), p.Removing...) {
		if !slices.Contains(p.Replicas, r) {
			return fmt.Errorf("reassignment names replica %d, not among %v", r, p.Replicas)
		}
	}
	for _, r := range p.Adding {
		if slices.Contains(p.Removing, r) {
			return fmt.Errorf("replica %d is both added and removed", r)
		}
	}
	if p.Reassigning() && len(p.Target()) == 0 {
		return fmt.Errorf("reassignment removes every replica")
	}
	return nil
}

// partitionOf returns the topic and its partition index or
// kerr.UnknownTopicOrPartition.
func (s *State) partitionOf(topic string, partition int32) (*Topic, error) {
	t, err := s.topic(topic)
	if err != nil {
		return nil, err
	}
	if partition < 0 || int(partition) >= len(t.Partitions) {
		return nil, fmt.Errorf("topic %q has no partition %d: %w", topic, partition, kerr.UnknownTopicOrPartition)
	}
	return t, nil
}

// withPartition returns a state in which topic t's partition index is p.
func (s *State) withPartition(t *Topic, index int32, p Partition) *State {
	next := s.clone()
	nt := *t
	nt.Partitions = append([]Partition(nil), t.Partitions...)
	nt.Partitions[index] = p
	next.Topics[nt.Name] = &nt
	next.topicsByID[nt.ID] = &nt
	return next
}

func (s *State) alterReassignment(c *AlterReassignment) (*State, Result, error) {
	t, err := s.partitionOf(c.Topic, c.Partition)
	if err != nil {
		return nil, Result{}, err
	}
	cur := t.Partitions[c.Partition]
	original := cur.Original()
	if c.Target == nil {
		if !cur.Reassigning() {
			return nil, Result{}, fmt.Errorf("partition %s-%d has no reassignment in progress: %w", c.Topic, c.Partition, kerr.NoReassignmentInProgress)
		}
		return s.withPartition(t, c.Partition, Partition{Replicas: original, Moved: true}), Result{}, nil
	}
	if err := s.checkReplicas(c.Target); err != nil {
		return nil, Result{}, fmt.Errorf("partition %s-%d: target: %w", c.Topic, c.Partition, err)
	}
	target := append([]int32(nil), c.Target...)
	if sameSet(target, original) {
		// Moved as well: a replica opened from now on must not bootstrap
		// a configuration listing the servers in another order than the
		// one the group was bootstrapped with.
		return s.withPartition(t, c.Partition, Partition{Replicas: target, Moved: true}), Result{}, nil
	}
	removing := without(original, target)
	p := Partition{
		Replicas: append(target, removing...),
		Adding:   without(target, original),
		Removing: removing,
		Moved:    true,
	}
	if len(p.Removing) == 0 {
		p.Removing = nil
	}
	if len(p.Adding) == 0 {
		p.Adding = nil
	}
	return s.withPartition(t, c.Partition, p), Result{}, nil
}

func (s *State) completeReassignment(c *CompleteReassignment) (*State, Result, error) {
	t, err := s.partitionOf(c.Topic, c.Partition)
	if err != nil {
		return nil, Result{}, err
	}
	cur := t.Partitions[c.Partition]
	if !cur.Reassigning() {
		return nil, Result{}, fmt.Errorf("partition %s-%d has no reassignment in progress: %w", c.Topic, c.Partition, kerr.NoReassignmentInProgress)
	}
	if want := cur.Target(); !slices.Equal(want, c.Target) {
		return nil, Result{}, fmt.Errorf("partition %s-%d is being reassigned to %v, not %v: %w", c.Topic, c.Partition, want, c.Target, kerr.InvalidReplicaAssignment)
	}
	return s.withPartition(t, c.Partition, Partition{Replicas: append([]int32(nil), c.Target...), Moved: true}), Result{}, nil
}
