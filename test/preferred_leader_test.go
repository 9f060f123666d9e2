package test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// leadersOf returns, per partition of topic, the leader and the preferred
// replica (the first) as the node at addr reports them; nil when the
// node does not answer or does not know the topic with want partitions.
func leadersOf(t *testing.T, addr, topic string, want int) (leaders, preferred []int32) {
	t.Helper()
	for _, mt := range metadataOf(t, addr).Topics {
		if mt.Topic == nil || *mt.Topic != topic || len(mt.Partitions) != want {
			continue
		}
		leaders, preferred = make([]int32, want), make([]int32, want)
		for _, mp := range mt.Partitions {
			if mp.Partition < 0 || int(mp.Partition) >= want || len(mp.Replicas) == 0 {
				return nil, nil
			}
			leaders[mp.Partition], preferred[mp.Partition] = mp.Leader, mp.Replicas[0]
		}
	}
	return leaders, preferred
}

// allPreferred reports whether every running node reports every partition
// of topic led by its preferred replica.
func allPreferred(t *testing.T, procs []*sluiceProcess, topic string, partitions int) bool {
	for _, p := range procs {
		if !p.running() {
			continue
		}
		leaders, preferred := leadersOf(t, p.Addr, topic, partitions)
		if leaders == nil {
			return false
		}
		for i := range leaders {
			if leaders[i] != preferred[i] {
				return false
			}
		}
	}
	return true
}

// createSpread creates topic with partitions partitions on all three
// nodes through kadm (routed to the controller), so each node is the
// preferred leader of some.
func createSpread(t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	eventually(t, "create "+topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := adm.CreateTopic(ctx, partitions, 3, nil, topic)
		return err == nil && r.Err == nil
	})
}

// electPreferred sends ElectLeaders of kind how for topic's partitions
// through kadm and returns each partition's error.
func electPreferred(t *testing.T, adm *kadm.Client, how kadm.ElectLeadersHow, topic string, partitions ...int32) map[int32]error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	set := kadm.TopicsSet{}
	set.Add(topic, partitions...)
	res, err := adm.ElectLeaders(ctx, how, set)
	if err != nil {
		t.Fatalf("ElectLeaders: %v", err)
	}
	out := map[int32]error{}
	for p, r := range res[topic] {
		out[p] = r.Err
	}
	return out
}

// TestElectPreferredLeaders: three nodes, automatic restore off. After a
// kill -9 and restart of a node, the partitions it prefers are led by
// others; ElectLeaders (preferred, through kadm, to any node) hands them
// back; asked again it answers ELECTION_NOT_NEEDED, and an unclean
// election is refused with INVALID_REQUEST.
func TestElectPreferredLeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3, "--auto-leader-rebalance-enable=false")
	seeds := addrsOf(procs...)
	adm := clusterAdmin(t, seeds)
	const topic, n = "elect", 6
	createSpread(t, adm, topic, n)
	eventually(t, "every partition has a leader", func() bool {
		leaders, _ := leadersOf(t, procs[0].Addr, topic, n)
		for _, l := range leaders {
			if l < 1 {
				return false
			}
		}
		return leaders != nil
	})
	// Whoever was elected first, one election puts every preferred
	// replica in charge.
	all := []int32{0, 1, 2, 3, 4, 5}
	eventually(t, "ElectLeaders makes every preferred replica lead", func() bool {
		for p, err := range electPreferred(t, adm, kadm.ElectPreferredReplica, topic, all...) {
			if err != nil && !errors.Is(err, kerr.ElectionNotNeeded) && !errors.Is(err, kerr.PreferredLeaderNotAvailable) {
				t.Fatalf("partition %d: %v", p, err)
			}
		}
		return allPreferred(t, procs, topic, n)
	})

	// Node 1 goes away and comes back: its partitions stay with others.
	procs[0].Kill()
	eventually(t, "others lead node 1's partitions", func() bool {
		leaders, preferred := leadersOf(t, procs[1].Addr, topic, n)
		if leaders == nil {
			return false
		}
		for i := range leaders {
			if preferred[i] == 1 && (leaders[i] < 2) {
				return false
			}
		}
		return true
	})
	procs[0].Restart()
	procs[0].waitListening()
	if allPreferred(t, procs, topic, n) {
		t.Fatal("node 1 leads its partitions again with automatic restore off")
	}
	start := time.Now()
	eventually(t, "ElectLeaders hands node 1 its partitions back", func() bool {
		for p, err := range electPreferred(t, adm, kadm.ElectPreferredReplica, topic, all...) {
			if err != nil && !errors.Is(err, kerr.ElectionNotNeeded) && !errors.Is(err, kerr.PreferredLeaderNotAvailable) && !errors.Is(err, kerr.NotLeaderForPartition) {
				t.Fatalf("partition %d: %v", p, err)
			}
		}
		return allPreferred(t, procs, topic, n)
	})
	t.Logf("preferred leaders back %s after node 1's restart", time.Since(start).Round(time.Millisecond))
	for p, err := range electPreferred(t, adm, kadm.ElectPreferredReplica, topic, all...) {
		if !errors.Is(err, kerr.ElectionNotNeeded) {
			t.Fatalf("partition %d led by its preferred replica: %v, want ELECTION_NOT_NEEDED", p, err)
		}
	}
	for p, err := range electPreferred(t, adm, kadm.ElectLiveReplica, topic, 0) {
		if !errors.Is(err, kerr.InvalidRequest) {
			t.Fatalf("unclean election of partition %d: %v, want INVALID_REQUEST", p, err)
		}
	}
	if errs := electPreferred(t, adm, kadm.ElectPreferredReplica, "no-such-topic", 0); !errors.Is(errs[0], kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", errs)
	}
}

// TestPreferredLeadersRestoredAfterRestart: three nodes with automatic
// preferred leader restore checking every second. Every partition ends up
// led by its preferred replica; after a kill -9 and restart of a node,
// its partitions come back to it within a bounded time, with no request.
func TestPreferredLeadersRestoredAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3, "--leader-imbalance-check-interval-seconds", "1")
	adm := clusterAdmin(t, addrsOf(procs...))
	const topic, n = "restore", 6
	createSpread(t, adm, topic, n)
	eventually(t, "every partition led by its preferred replica", func() bool {
		return allPreferred(t, procs, topic, n)
	})
	procs[1].Kill()
	eventually(t, "others lead node 2's partitions", func() bool {
		leaders, preferred := leadersOf(t, procs[0].Addr, topic, n)
		if leaders == nil {
			return false
		}
		for i := range leaders {
			if preferred[i] == 2 && (leaders[i] < 1 || leaders[i] == 2) {
				return false
			}
		}
		return true
	})
	procs[1].Restart()
	procs[1].waitListening()
	start := time.Now()
	eventually(t, "node 2 leads its partitions again", func() bool {
		return allPreferred(t, procs, topic, n)
	})
	t.Logf("preferred leaders restored %s after node 2 listened again", time.Since(start).Round(time.Millisecond))
}
