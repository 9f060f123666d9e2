package consumergroup

import "sort"

// GroupStats is one group as metrics see it: its state, member count and
// committed offsets.
type GroupStats struct {
	// ID is the group id.
	ID string
	// State is Kafka's name of the group's state: Empty,
	// PreparingRebalance, CompletingRebalance or Stable.
	State string
	// Members is the number of members.
	Members int
	// Generation is the group's generation: it grows by one at every
	// completed join phase (rebalance), including one that ends empty.
	Generation int32
	// Offsets are the group's committed offsets, by topic then partition.
	Offsets []CommittedOffset
}

// CommittedOffset is one partition's committed offset of a group.
type CommittedOffset struct {
	Topic     string
	Partition int32
	// Offset is the committed offset: the next record the group will
	// consume.
	Offset int64
	// CommitTimestamp is when the offset was committed (ms since the
	// epoch).
	CommitTimestamp int64
	// MovedTimestamp is when the offset last changed (ms since the epoch):
	// re-committing the same offset does not move it. After a coordinator
	// load it is the commit timestamp of the oldest record of the offset
	// still in the log.
	MovedTimestamp int64
	// MovedGeneration is the group's generation when the offset last
	// changed (after a coordinator load: the generation loaded).
	MovedGeneration int32
}

// GroupStates lists the states a group may be in, in the order Kafka
// defines them; GroupStats.State is one of these.
var GroupStates = []string{
	stateEmpty.String(), statePreparingRebalance.String(),
	stateCompletingRebalance.String(), stateStable.String(),
}

// Stats returns every group this coordinator holds (of the partitions it
// still leads in the epoch it loaded; it starts no load), sorted by id, each
// with its offsets sorted by topic and partition. It copies what it reads
// under the coordinator's lock and does no I/O, so a metrics scrape never
// waits for a commit. The slices are the caller's. A closed coordinator
// returns nil. Safe for concurrent use.
func (c *Coordinator) Stats() []GroupStats {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.dropLostLocked()
	out := make([]GroupStats, 0, len(c.groups))
	for _, g := range c.groups {
		gs := GroupStats{ID: g.id, State: g.state.String(), Members: len(g.members), Generation: g.generation, Offsets: make([]CommittedOffset, 0, len(g.offsets))}
		for tp, o := range g.offsets {
			gs.Offsets = append(gs.Offsets, CommittedOffset{Topic: tp.topic, Partition: tp.partition, Offset: o.offset, CommitTimestamp: o.commitTimestamp,
				MovedTimestamp: o.movedAt, MovedGeneration: o.movedGeneration})
		}
		out = append(out, gs)
	}
	c.mu.Unlock()
	// Sort outside the lock: requests wait on it.
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	for _, gs := range out {
		sort.Slice(gs.Offsets, func(i, j int) bool {
			a, b := gs.Offsets[i], gs.Offsets[j]
			return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
		})
	}
	return out
}
