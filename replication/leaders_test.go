package replication

import (
	"context"
	"testing"
	"time"
)

// TestLeadersRecordedForNodesWithoutReplica checks that a node holding no
// replica of a partition names the leader its group elected, with its
// epoch, once the leader reported it, and follows a leadership transfer.
func TestLeadersRecordedForNodesWithoutReplica(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := openGroupNodes(t, 1, 2, 3)
	for id, c := range nodes {
		c.SetLeaderReports(func(ctx context.Context, leader int32, changes []LeaderChange) error {
			_, err := nodes[leader].RecordLeaders(ctx, id, changes)
			return err
		})
	}
	metaLeader := leaderOf(t, nodes)
	if _, err := metaLeader.CreateTopic(ctx, CreateTopicRequest{Name: "t", Partitions: 3, ReplicationFactor: 2}); err != nil {
		t.Fatal(err)
	}
	// groupLeader returns partition i's leader and epoch as a replica
	// holding it and leading it reports them (-1 while none leads).
	groupLeader := func(i int32) (int32, int32) {
		for _, c := range nodes {
			t, ok := c.Topic("t")
			if !ok {
				continue
			}
			if p := t.Partition(i); p.group != nil && p.group.IsLeader() {
				return p.Leader()
			}
		}
		return -1, -1
	}
	// outsider returns the node holding no replica of partition i.
	outsider := func(i int32) *Cluster {
		t, _ := metaLeader.Topic("t")
		for id, c := range nodes {
			if !containsID(t.Partition(i).Replicas(), id) {
				return c
			}
		}
		return nil
	}
	// waitNamed waits until the outsider of partition i names the leader
	// its group has, in an epoch above minEpoch.
	waitNamed := func(i int32, minEpoch int32, what string) (leader, epoch int32) {
		t.Helper()
		o := outsider(i)
		err := o.WaitView(ctx, func() bool {
			leader, epoch = groupLeader(i)
			tp, ok := o.Topic("t")
			if !ok || leader < 0 || epoch <= minEpoch {
				return false
			}
			l, e := tp.Partition(i).Leader()
			return l == leader && e == epoch
		})
		if err != nil {
			tp, _ := o.Topic("t")
			l, e := tp.Partition(i).Leader()
			t.Fatalf("%s: node %d names %d@%d for partition %d; its group's leader is %d@%d: %v", what, o.NodeID(), l, e, i, leader, epoch, err)
		}
		return leader, epoch
	}
	for i := range int32(3) {
		waitNamed(i, 0, "after creation")
	}

	// Move partition 0's leadership to its other replica.
	before, epoch := waitNamed(0, 0, "before the transfer")
	tp, _ := nodes[before].Topic("t")
	if err := tp.Partition(0).group.Raft().LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	// The old leader may win the next election again: what matters is
	// that the outsider follows the group into the new epoch.
	after, newEpoch := waitNamed(0, epoch, "after the transfer")
	t.Logf("partition 0: %d@%d, then %d@%d", before, epoch, after, newEpoch)
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// BenchmarkLeaderRecords creates a topic of 1,000 partitions on a single
// node and measures what recording their 1,000 elections costs the
// metadata: how many metadata entries it took (the reporter batches
// elections that come together) and how long after CreateTopic returned
// (which waits for the groups to elect) all were recorded.
func BenchmarkLeaderRecords(b *testing.B) {
	const partitions = 1000
	for range b.N {
		cfg := DefaultConfig()
		cfg.DataDir = b.TempDir()
		c, err := Open(cfg, Options{})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		topic, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "many", Partitions: partitions, ReplicationFactor: 1})
		if err != nil {
			b.Fatal(err)
		}
		created, createdAt := c.group.State().Version, time.Now()
		recorded := func() bool {
			mt, ok := c.group.State().TopicByID(topic.ID())
			if !ok {
				return false
			}
			for _, p := range mt.Partitions {
				if _, _, ok := p.RecordedLeader(); !ok {
					return false
				}
			}
			return true
		}
		if err := c.WaitView(ctx, recorded); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(c.group.State().Version-created), "meta-entries")
		b.ReportMetric(float64(createdAt.Sub(start).Milliseconds()), "ms-create")
		b.ReportMetric(float64(time.Since(createdAt).Milliseconds()), "ms-then-recorded")
		cancel()
		if err := c.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
