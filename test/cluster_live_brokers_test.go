package test

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// listedBrokers returns the node ids a Metadata answer lists, ascending,
// failing the test when a partition names a leader that is not among
// them (a client could not reach it).
func listedBrokers(t *testing.T, md *kmsg.MetadataResponse) []int32 {
	t.Helper()
	var ids []int32
	for _, b := range md.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	for _, mt := range md.Topics {
		for _, mp := range mt.Partitions {
			if mp.Leader >= 0 && !slices.Contains(ids, mp.Leader) {
				t.Fatalf("%v-%d names leader %d, not among the listed brokers %v", mt.Topic, mp.Partition, mp.Leader, ids)
			}
		}
	}
	return ids
}

// describedBrokers returns the node ids DescribeCluster v2 lists at addr,
// with fenced brokers included or not, and those it marks fenced.
func describedBrokers(t *testing.T, addr string, includeFenced bool) (ids, fenced []int32) {
	t.Helper()
	req := kmsg.NewPtrDescribeClusterRequest()
	req.SetVersion(2)
	req.IncludeFencedBrokers = includeFenced
	resp := dialRaw(t, addr).mustRoundTrip(req).(*kmsg.DescribeClusterResponse)
	for _, b := range resp.Brokers {
		ids = append(ids, b.NodeID)
		if b.IsFenced {
			fenced = append(fenced, b.NodeID)
		}
	}
	slices.Sort(ids)
	return ids, fenced
}

// connectCounter counts a client's dials of one node (kgo's
// HookBrokerConnect).
type connectCounter struct {
	node  atomic.Int32
	dials atomic.Int64
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (c *connectCounter) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, _ error) {
	if meta.NodeID == c.node.Load() {
		c.dials.Add(1)
	}
}

// TestClusterMetadataListsLiveBrokers: three nodes as processes; the node
// coordinating a transactional producer is killed with kill -9. Within a
// bounded time the survivors' Metadata and DescribeCluster stop listing
// it (DescribeCluster lists it fenced when asked, and sluice cluster
// status shows it down), no partition names it
// leader meanwhile, and the producer, whose client keeps running, commits
// a transaction again through the new coordinator within a bounded time,
// then no longer dials the dead node. Restarted, the node is listed again.
func TestClusterMetadataListsLiveBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	seeds := addrsOf(procs...)
	const topic, id = "live-brokers", "live-brokers-producer"
	createClusterTopic(t, seeds, topic, 3)
	eventually(t, "every node lists the three brokers", func() bool {
		for _, p := range procs {
			if !slices.Equal(listedBrokers(t, metadataOf(t, p.Addr)), []int32{1, 2, 3}) {
				return false
			}
		}
		return true
	})

	counter := &connectCounter{}
	counter.node.Store(-1)
	newClient := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
			kgo.TransactionalID(id), kgo.WithHooks(counter), kgo.ClientID("sluice-e2e-live"))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	cl := newClient()
	t.Cleanup(func() { cl.Close() })
	// transact runs one transaction of n records within d: nil once
	// committed.
	transact := func(n int, d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		var err error
		for range n {
			if err = cl.ProduceSync(ctx, kgo.StringRecord("v")).FirstErr(); err != nil {
				break
			}
		}
		if err != nil {
			// Give the transaction up; a client that cannot abort it is
			// replaced (its successor's InitProducerID aborts it).
			actx, acancel := context.WithTimeout(context.Background(), d)
			defer acancel()
			if aerr := cl.AbortBufferedRecords(actx); aerr == nil {
				aerr = cl.EndTransaction(actx, kgo.TryAbort)
				if aerr == nil {
					return err
				}
			}
			cl.Close()
			cl = newClient()
			return err
		}
		return cl.EndTransaction(ctx, kgo.TryCommit)
	}
	eventually(t, "a first transaction commits", func() bool { return transact(3, 10*time.Second) == nil })

	var victim int32
	eventually(t, "a coordinator of "+id, func() bool {
		victim = txnCoordinator(t, seeds[0], id)
		return victim > 0
	})
	var survivors []*sluiceProcess
	for i, p := range procs {
		if int32(i+1) != victim {
			survivors = append(survivors, p)
		}
	}
	want := slices.DeleteFunc([]int32{1, 2, 3}, func(n int32) bool { return n == victim })

	counter.node.Store(victim)
	t.Logf("kill -9 node %d, the coordinator of %s", victim, id)
	procs[victim-1].Kill()
	killed := time.Now()

	// The client, left running, commits again through another coordinator.
	const recoverWithin = 20 * time.Second
	eventuallyWithin(t, recoverWithin, "a transaction commits after the coordinator's kill", func() bool {
		return transact(3, 5*time.Second) == nil
	})
	t.Logf("a transaction committed %s after the kill; meanwhile the client dialled node %d %d times",
		time.Since(killed).Round(time.Millisecond), victim, counter.dials.Load())
	if c := txnCoordinator(t, survivors[0].Addr, id); c == victim {
		t.Fatalf("FindCoordinator names the killed node %d", victim)
	}
	// Until the node leaves its metadata a client may dial it in a tight
	// loop (franz-go does, on a refused dial of its coordinator); once it
	// has re-resolved, it must not dial it again.
	before := counter.dials.Load()
	for i := range 3 {
		if err := transact(3, 10*time.Second); err != nil {
			t.Fatalf("transaction %d after recovery: %v", i, err)
		}
	}
	if n := counter.dials.Load() - before; n > 0 {
		t.Fatalf("the client dialled the killed node %d more times after recovering", n)
	}

	eventuallyWithin(t, recoverWithin, "the survivors stop listing the killed node", func() bool {
		for _, p := range survivors {
			if !slices.Equal(listedBrokers(t, metadataOf(t, p.Addr)), want) {
				return false
			}
		}
		return true
	})
	for _, p := range survivors {
		if ids, _ := describedBrokers(t, p.Addr, false); !slices.Equal(ids, want) {
			t.Fatalf("DescribeCluster on %s lists %v, want %v", p.Addr, ids, want)
		}
		if ids, fenced := describedBrokers(t, p.Addr, true); len(ids) != 3 || !slices.Equal(fenced, []int32{victim}) {
			t.Fatalf("DescribeCluster with fenced brokers on %s lists %v, fenced %v; want all three, %d fenced", p.Addr, ids, fenced, victim)
		}
	}

	// sluice cluster status still shows the node, down: DescribeCluster
	// names it fenced though Metadata leaves it out.
	out, code := clusterStatus(t, survivors[0].Addr, "--format", "json")
	var st struct {
		Nodes []struct {
			ID    int32  `json:"id"`
			Up    bool   `json:"up"`
			Error string `json:"error"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != exitUnhealthyCode || len(st.Nodes) != 3 {
		t.Fatalf("cluster status (exit %d, %v): %s; want 3 nodes, unhealthy", code, err, out)
	}
	for _, n := range st.Nodes {
		if n.Up != (n.ID != victim) || (n.ID == victim && !strings.Contains(n.Error, "fenced")) {
			t.Fatalf("cluster status shows node %d up %v (%q); want only node %d down, fenced", n.ID, n.Up, n.Error, victim)
		}
	}

	procs[victim-1].Restart()
	procs[victim-1].waitListening()
	eventuallyWithin(t, recoverWithin, "every node lists the restarted node again", func() bool {
		for _, p := range procs {
			if !slices.Equal(listedBrokers(t, metadataOf(t, p.Addr)), []int32{1, 2, 3}) {
				return false
			}
		}
		return true
	})
	eventuallyWithin(t, recoverWithin, "a transaction commits with every node up", func() bool {
		return transact(3, 5*time.Second) == nil
	})
}
