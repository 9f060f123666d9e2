package replication

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/replication/meta"
)

// localPeers is a PeerClient between in-process nodes: it calls the
// target node's Cluster directly, as the Kafka handlers would.
type localPeers struct {
	self  int32
	nodes map[int32]*Cluster
}

func (l *localPeers) CompleteReassignment(ctx context.Context, controller Broker, topic string, _ [16]byte, partition int32, target []int32) error {
	return l.nodes[controller.NodeID].CompleteReassignment(ctx, l.self, topic, partition, target)
}

func (l *localPeers) ElectPreferred(ctx context.Context, leader Broker, topic string, partition int32) error {
	return l.nodes[leader.NodeID].ElectPreferred(ctx, topic, partition, true)
}

func (l *localPeers) Join(context.Context, string, string, meta.Member) error {
	return errors.New("not in this test")
}

// openMovingNodes opens three in-process nodes as openGroupNodes does,
// reaching each other through localPeers.
func openMovingNodes(t *testing.T) map[int32]*Cluster {
	t.Helper()
	return openNodesWith(t, []int32{1, 2, 3}, func(cfg *Config, opts *Options, nodes map[int32]*Cluster) {
		cfg.PartitionRaft.HeartbeatTimeout, cfg.PartitionRaft.ElectionTimeout, cfg.PartitionRaft.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
		cfg.AutoLeaderRebalance = false
		opts.Peers = &localPeers{self: cfg.NodeID, nodes: nodes}
	})
}

// partitionLeader returns the node whose handle of topic's partition 0
// leads it, waiting for one.
func partitionLeader(t *testing.T, nodes map[int32]*Cluster, topic string) *Cluster {
	t.Helper()
	var leader *Cluster
	waitUntil(t, "a leader of "+topic, func() bool {
		for _, c := range nodes {
			if tp, ok := c.Topic(topic); ok && tp.Partition(0).group != nil && tp.Partition(0).group.IsLeader() {
				leader = c
				return true
			}
		}
		return false
	})
	return leader
}

// TestReassignInProcess moves a partition with data off its follower,
// then off its leader, then elects its preferred leader, on three
// in-process nodes (the race detector's view of the mover): the moves
// complete in the metadata, the new replicas hold every committed batch,
// the nodes that left delete theirs, and errors are Kafka's.
func TestReassignInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := openMovingNodes(t)
	ctl := leaderOf(t, nodes)
	if _, err := ctl.CreateTopic(ctx, CreateTopicRequest{Name: "m", Partitions: 1, ReplicationFactor: 2}); err != nil {
		t.Fatal(err)
	}
	leader := partitionLeader(t, nodes, "m")
	p, _ := leader.Partition("m", 0)
	for i := range 20 {
		a, err := p.Append(ctx, keyedBatch("k", fmt.Sprint(i), time.Now().UnixMilli()))
		if err != nil || a.Wait(ctx) != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	end := p.Offsets().HighWatermark

	for _, tc := range []struct {
		target []int32
		want   error
	}{
		{nil, kerr.NoReassignmentInProgress},
		{[]int32{}, kerr.InvalidReplicaAssignment},
		{[]int32{1, 1}, kerr.InvalidReplicaAssignment},
		{[]int32{7}, kerr.InvalidReplicaAssignment},
	} {
		if err := ctl.AlterReassignment(ctx, "m", 0, tc.target, true); !errors.Is(err, tc.want) {
			t.Fatalf("target %v: %v, want %v", tc.target, err, tc.want)
		}
	}
	if err := ctl.AlterReassignment(ctx, "m", 0, []int32{1, 2, 3}, false); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("a larger target without AllowReplicationFactorChange: %v", err)
	}
	for id, c := range nodes {
		if c != ctl {
			if err := c.AlterReassignment(ctx, "m", 0, []int32{1}, true); !errors.Is(err, kerr.NotController) {
				t.Fatalf("node %d off the controller: %v", id, err)
			}
			if _, err := c.Reassignments(); !errors.Is(err, kerr.NotController) {
				t.Fatalf("node %d lists off the controller: %v", id, err)
			}
		}
	}

	move := func(target []int32) {
		t.Helper()
		st, _ := ctl.group.State().Topic("m")
		old := st.Partitions[0].Replicas
		if err := ctl.AlterReassignment(ctx, "m", 0, target, true); err != nil {
			t.Fatalf("reassign %v -> %v: %v", old, target, err)
		}
		waitUntil(t, fmt.Sprintf("the move %v -> %v completes", old, target), func() bool {
			list, err := ctl.Reassignments()
			if err != nil {
				t.Fatal(err)
			}
			st, _ := ctl.group.State().Topic("m")
			return len(list) == 0 && slices.Equal(st.Partitions[0].Replicas, target)
		})
		version := ctl.group.State().Version
		for id, c := range nodes {
			if err := c.waitView(ctx, version); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(c.partitionDir("m", 0))
			if in := slices.Contains(target, id); in == os.IsNotExist(err) {
				t.Fatalf("node %d: in the target %v, directory: %v", id, in, err)
			}
		}
		for _, id := range target {
			waitUntil(t, fmt.Sprintf("node %d holds every batch", id), func() bool {
				tp, _ := nodes[id].Topic("m")
				return tp.Partition(0).replica.Offsets().HighWatermark >= end
			})
		}
	}
	var follower, third int32
	st, _ := ctl.group.State().Topic("m")
	for _, id := range []int32{1, 2, 3} {
		switch {
		case !slices.Contains(st.Partitions[0].Replicas, id):
			third = id
		case id != leader.NodeID():
			follower = id
		}
	}
	move([]int32{third, leader.NodeID()}) // off the follower
	move([]int32{third, follower})        // off the leader

	// The preferred replica is third: elect it wherever the leader is.
	waitUntil(t, "preferred leader elected", func() bool {
		err := nodes[follower].ElectPreferred(ctx, "m", 0, false)
		if err != nil && !errors.Is(err, kerr.ElectionNotNeeded) && !errors.Is(err, kerr.PreferredLeaderNotAvailable) && !errors.Is(err, kerr.NotLeaderForPartition) {
			t.Fatal(err)
		}
		return errors.Is(err, kerr.ElectionNotNeeded) && partitionLeader(t, nodes, "m").NodeID() == third
	})
	if err := nodes[follower].ElectPreferred(ctx, "nope", 0, false); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", err)
	}
}
