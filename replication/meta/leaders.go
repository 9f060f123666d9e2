package meta

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// maxLeaderChanges bounds the changes of one RecordLeaders, so a batch
// stays a small entry (about 80 bytes of JSON each).
const maxLeaderChanges = 10_000

// LeaderChange says that Leader leads partition Partition of the topic
// with id TopicID in leader epoch Epoch (its Raft group's term).
type LeaderChange struct {
	TopicID   TopicID
	Partition int32
	Leader    int32
	Epoch     int32
}

// RecordLeaders records partition leaders, as their Raft groups elected
// them, so that a node holding no replica of a partition names its real
// leader in Metadata. Partition leaders report their elections in
// batches; the metadata leader proposes them. A change is applied only
// if it is newer than the recorded one (a higher epoch), names a replica
// of the partition, and its topic still exists: stale or obsolete
// changes (a topic deleted meanwhile, a report overtaken by a later
// election) are skipped, not refused, since a batch mixes many
// partitions. Result.Recorded counts the changes applied. Build one with
// NewRecordLeaders.
type RecordLeaders struct {
	Topics []TopicLeaders `json:"topics"`
}

// TopicLeaders are the changes of one topic in a RecordLeaders, grouped
// so that the topic id is written once (about 25 bytes per change).
type TopicLeaders struct {
	TopicID    TopicID           `json:"id"`
	Partitions []PartitionLeader `json:"partitions"`
}

// PartitionLeader is one partition's change in TopicLeaders.
type PartitionLeader struct {
	Partition int32 `json:"p"`
	Leader    int32 `json:"l"`
	Epoch     int32 `json:"e"`
}

func (RecordLeaders) op() string { return "record_leaders" }

// NewRecordLeaders returns the command recording changes, grouped by
// topic in the order topics first appear.
func NewRecordLeaders(changes []LeaderChange) *RecordLeaders {
	c := &RecordLeaders{}
	at := map[TopicID]int{}
	for _, ch := range changes {
		i, ok := at[ch.TopicID]
		if !ok {
			i = len(c.Topics)
			at[ch.TopicID] = i
			c.Topics = append(c.Topics, TopicLeaders{TopicID: ch.TopicID})
		}
		c.Topics[i].Partitions = append(c.Topics[i].Partitions, PartitionLeader{Partition: ch.Partition, Leader: ch.Leader, Epoch: ch.Epoch})
	}
	return c
}

// Changes returns the command's changes, topic by topic.
func (c *RecordLeaders) Changes() []LeaderChange {
	var out []LeaderChange
	for _, t := range c.Topics {
		for _, p := range t.Partitions {
			out = append(out, LeaderChange{TopicID: t.TopicID, Partition: p.Partition, Leader: p.Leader, Epoch: p.Epoch})
		}
	}
	return out
}

// recordLeaders applies c: touched topics are copied once each, with a
// copy of their partitions; untouched ones are shared.
func (s *State) recordLeaders(c *RecordLeaders) (*State, Result, error) {
	n := 0
	for _, t := range c.Topics {
		n += len(t.Partitions)
	}
	if n > maxLeaderChanges {
		return nil, Result{}, fmt.Errorf("record_leaders with %d changes; at most %d per command: %w", n, maxLeaderChanges, kerr.InvalidRequest)
	}
	next := s.clone()
	recorded := 0
	for _, tl := range c.Topics {
		t, ok := next.topicsByID[tl.TopicID]
		if !ok {
			continue
		}
		var nt *Topic
		for _, ch := range tl.Partitions {
			if ch.Partition < 0 || int(ch.Partition) >= len(t.Partitions) || ch.Epoch < 1 {
				continue
			}
			if nt != nil {
				t = nt
			}
			p := t.Partitions[ch.Partition]
			if ch.Epoch <= p.LeaderEpoch || !containsNode(p.Replicas, ch.Leader) {
				continue
			}
			if nt == nil {
				cp := *t
				cp.Partitions = append([]Partition(nil), t.Partitions...)
				nt = &cp
				next.Topics[nt.Name] = nt
				next.topicsByID[nt.ID] = nt
				t = nt
			}
			nt.Partitions[ch.Partition].Leader = ch.Leader
			nt.Partitions[ch.Partition].LeaderEpoch = ch.Epoch
			recorded++
		}
	}
	return next, Result{Recorded: recorded}, nil
}

// containsNode reports whether id is in nodes.
func containsNode(nodes []int32, id int32) bool {
	for _, n := range nodes {
		if n == id {
			return true
		}
	}
	return false
}

// RecordedLeader returns the leader and epoch last recorded for a
// partition by RecordLeaders, if it is still one of its replicas; false
// when none is (never recorded, or moved away since).
func (p Partition) RecordedLeader() (leader, epoch int32, ok bool) {
	if p.LeaderEpoch < 1 || !containsNode(p.Replicas, p.Leader) {
		return -1, -1, false
	}
	return p.Leader, p.LeaderEpoch, true
}
