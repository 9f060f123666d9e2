package test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startShareConsumers starts n franz-go share consumers of group on topic
// (kgo.ShareGroup), each polling in its own goroutine until the returned
// stop is called (stop closes them: they leave the group).
func startShareConsumers(t *testing.T, addr, group, topic string, n int, opts ...kgo.Opt) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var clients []*kgo.Client
	for i := range n {
		o := append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID(fmt.Sprintf("worker-%d", i)), kgo.ShareGroup(group), kgo.ConsumeTopics(topic)}, opts...)
		cl, err := kgo.NewClient(o...)
		if err != nil {
			t.Fatalf("share consumer %d: %v", i, err)
		}
		clients = append(clients, cl)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				if fs.IsClientClosed() {
					return
				}
			}
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			for _, cl := range clients {
				cl.Close()
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitShareGroup polls ShareGroupDescribe until cond holds on the group,
// failing after testTimeout with the last description.
func waitShareGroup(t *testing.T, adm *kadm.Client, group, what string, cond func(kadm.DescribedShareGroup) bool) kadm.DescribedShareGroup {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	var last kadm.DescribedShareGroup
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		described, err := adm.DescribeShareGroups(ctx, group)
		cancel()
		lastErr = err
		if err == nil {
			last = described[group]
			if last.Err == nil && cond(last) {
				return last
			}
			lastErr = last.Err
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("share group %s: %s not reached within %s; last: %+v, error %v", group, what, testTimeout, last, lastErr)
	return last
}

// TestShareGroupMembership runs four franz-go share consumers over a
// topic of two partitions against a real server: every member gets an
// assignment and every partition is assigned (each to two members), the
// group is listed as a share group, survives a restart of the server (the
// consumers join again), and is empty once they leave.
func TestShareGroupMembership(t *testing.T) {
	p := startProcess(t, t.TempDir(), "--group-share-heartbeat-interval-ms", "1000", "--group-share-session-timeout-ms", "6000")
	const topic, group = "share-membership", "share-membership-workers"
	createTopic(t, p.Addr, topic, 2)
	adm := newAdmin(t, p.Addr)
	stop := startShareConsumers(t, p.Addr, group, topic, 4)

	balanced := func(g kadm.DescribedShareGroup) bool {
		if g.GroupState != "Stable" || len(g.Members) != 4 {
			return false
		}
		perPartition := map[int32]int{}
		for _, m := range g.Members {
			ps := m.Assignment[topic]
			if len(ps) != 1 || m.MemberEpoch != g.GroupEpoch {
				return false
			}
			for p := range ps {
				perPartition[p]++
			}
		}
		return perPartition[0] == 2 && perPartition[1] == 2
	}
	g := waitShareGroup(t, adm, group, "4 members, each with one partition, each partition twice", balanced)
	if g.Assignor != "simple" {
		t.Errorf("assignor %q, want simple", g.Assignor)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	listed, err := adm.ListGroupsByType(ctx, []string{"share"})
	if err != nil || len(listed) != 1 || listed[group].ProtocolType != "share" || listed[group].State != "Stable" {
		t.Fatalf("share groups listed: %+v, %v; want %s, share, Stable", listed, err, group)
	}
	classic, err := adm.ListGroupsByType(ctx, []string{"classic"})
	if err != nil || len(classic) != 0 {
		t.Errorf("classic groups listed: %+v, %v; want none", classic, err)
	}

	// The group survives a restart of its coordinator; the consumers
	// join it again with higher epochs.
	epoch := g.GroupEpoch
	if err := p.Terminate(); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	p.Restart()
	g = waitShareGroup(t, adm, group, "rejoined after the restart", func(g kadm.DescribedShareGroup) bool {
		return balanced(g) && g.GroupEpoch > epoch
	})

	stop()
	waitShareGroup(t, adm, group, "empty after the consumers left", func(g kadm.DescribedShareGroup) bool {
		return g.GroupState == "Empty" && len(g.Members) == 0
	})
	deleted, err := adm.DeleteGroup(ctx, group)
	if err != nil || deleted.Err != nil {
		t.Fatalf("delete share group: %v %v", err, deleted.Err)
	}
	listed, err = adm.ListGroupsByType(ctx, []string{"share"})
	if err != nil || len(listed) != 0 {
		t.Errorf("share groups after delete: %+v, %v", listed, err)
	}
}

// TestClusterShareGroupCoordinatorKilled: three nodes as processes; three
// franz-go share consumers join a share group; the group's coordinator
// (the leader of its __consumer_offsets partition, replicated on all
// three) is killed with kill -9. The new coordinator has the group (from
// the replicated records), the consumers join it again with a higher
// epoch, and every partition is assigned again.
func TestClusterShareGroupCoordinatorKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3, "--group-share-heartbeat-interval-ms", "1000", "--group-share-session-timeout-ms", "6000")
	const topic, group = "share-failover", "share-failover-workers"
	createReplicatedTopic(t, procs, topic)
	var seeds []string
	for _, p := range procs {
		seeds = append(seeds, p.Addr)
	}
	var partitions int32
	for _, mt := range metadataOf(t, procs[0].Addr).Topics {
		if mt.Topic != nil && *mt.Topic == topic {
			partitions = int32(len(mt.Partitions))
		}
	}
	if partitions == 0 {
		t.Fatalf("topic %s not in the metadata", topic)
	}
	startShareConsumers(t, procs[0].Addr, group, topic, 3, kgo.SeedBrokers(seeds...))
	everyPartition := func(g kadm.DescribedShareGroup) bool {
		if g.GroupState != "Stable" || len(g.Members) != 3 {
			return false
		}
		assigned := map[int32]bool{}
		for _, m := range g.Members {
			if len(m.Assignment[topic]) == 0 || m.MemberEpoch != g.GroupEpoch {
				return false
			}
			for p := range m.Assignment[topic] {
				assigned[p] = true
			}
		}
		return int32(len(assigned)) == partitions
	}
	g := waitShareGroup(t, newAdmin(t, seeds[0], kgo.SeedBrokers(seeds...)), group, "3 members covering every partition", everyPartition)

	var coordinator int32
	eventually(t, "every node names one coordinator of the group", func() bool {
		coordinator = -1
		for _, p := range procs {
			c := groupCoordinator(t, p.Addr, group)
			if c < 1 || coordinator != -1 && c != coordinator {
				return false
			}
			coordinator = c
		}
		return true
	})
	procs[coordinator-1].Kill()
	t.Logf("killed node %d, the coordinator of %s at group epoch %d", coordinator, group, g.GroupEpoch)
	var live []string
	for _, p := range procs {
		if p.running() {
			live = append(live, p.Addr)
		}
	}
	eventually(t, "the live nodes name one new coordinator", func() bool {
		a, b := groupCoordinator(t, live[0], group), groupCoordinator(t, live[1], group)
		return a > 0 && a != coordinator && a == b
	})
	adm := newAdmin(t, live[0], kgo.SeedBrokers(live...))
	after := waitShareGroup(t, adm, group, "rejoined on the new coordinator", func(g2 kadm.DescribedShareGroup) bool {
		return everyPartition(g2) && g2.GroupEpoch > g.GroupEpoch
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	listed, err := adm.ListGroupsByType(ctx, []string{"share"})
	if err != nil || listed[group].ProtocolType != "share" {
		t.Fatalf("share groups listed after the failover: %+v, %v", listed, err)
	}
	t.Logf("group epoch %d after the failover", after.GroupEpoch)
}
