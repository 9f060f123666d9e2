package test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createReplicatedTopic creates topic with one partition on every node
// (replication factor n) through the controller, and waits until every
// node names the same leader for it.
func createReplicatedTopic(t *testing.T, procs []*sluiceProcess, topic string) {
	t.Helper()
	// The controller may change between the Metadata that names it and
	// the CreateTopics (a young cluster may still elect): ask again then.
	eventually(t, "CreateTopics "+topic+" on the controller", func() bool {
		controller := metadataOf(t, procs[0].Addr).ControllerID
		if controller < 1 {
			return false
		}
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10_000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, int16(len(procs))
		req.Topics = append(req.Topics, rt)
		resp := dialRaw(t, procs[controller-1].Addr).mustRoundTrip(req).(*kmsg.CreateTopicsResponse)
		switch code := resp.Topics[0].ErrorCode; code {
		case 0:
			return true
		case kerr.NotController.Code:
			return false
		default:
			t.Fatalf("CreateTopics %s: %v", topic, kerr.ErrorForCode(code))
			return false
		}
	})
	eventually(t, "every node names one leader of "+topic, func() bool {
		leaders := map[int32]bool{}
		for _, p := range procs {
			if !p.running() {
				continue
			}
			l, replicas, _ := partitionState(t, p.Addr, topic)
			if l < 1 || len(replicas) != len(procs) {
				return false
			}
			leaders[l] = true
		}
		return len(leaders) == 1
	})
}

// TestClusterLeaderKilledDuringProduce: three nodes as processes, one
// partition replicated on all three, an idempotent acks=all producer
// writing without pause; kill -9 of the partition's leader. A new leader
// serves within seconds, and every acknowledged record is in the log
// exactly once, in the order produced.
func TestClusterLeaderKilledDuringProduce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	const topic = "failover"
	createReplicatedTopic(t, procs, topic)
	var seeds []string
	for _, p := range procs {
		seeds = append(seeds, p.Addr)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond),
		kgo.RetryTimeout(testTimeout), kgo.RecordDeliveryTimeout(testTimeout),
		// kgo refreshes metadata at most every 5s by default: the figure
		// would be the client's, not the failover's.
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	const total, killAt = 1500, 400
	var (
		mu        sync.Mutex
		acked     []int
		firstErr  error
		killedAt  time.Time
		recovered time.Duration
	)
	ackedOne := make(chan struct{}, total)
	// At most 64 records in flight, so that most of them are produced
	// after the kill, through the new leader.
	window := make(chan struct{}, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	go func() {
		for i := range total {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			r := &kgo.Record{Partition: 0, Value: []byte(strconv.Itoa(i))}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer func() { <-window }()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					n, _ := strconv.Atoi(string(r.Value))
					acked = append(acked, n)
					if !killedAt.IsZero() && recovered == 0 {
						recovered = time.Since(killedAt)
					}
				}
				ackedOne <- struct{}{}
			})
		}
	}()
	for done := 0; done < total; done++ {
		select {
		case <-ackedOne:
		case <-ctx.Done():
			t.Fatalf("%d of %d produce callbacks within %s", done, total, 2*testTimeout)
		}
		if done == killAt {
			leader, _, _ := partitionState(t, procs[0].Addr, topic)
			if leader < 1 {
				t.Fatalf("no leader of %s before the kill", topic)
			}
			mu.Lock()
			killedAt = time.Now()
			mu.Unlock()
			procs[leader-1].Kill()
			t.Logf("killed node %d (the leader) after %d acknowledgements", leader, killAt)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		t.Fatalf("a produce failed (retries were on): %v", firstErr)
	}
	t.Logf("first acknowledgement %s after the kill", recovered)
	if recovered == 0 || recovered > 15*time.Second {
		t.Fatalf("first acknowledgement after the kill took %s", recovered)
	}

	var live []string
	for _, p := range procs {
		if p.running() {
			live = append(live, p.Addr)
		}
	}
	var values []string
	for _, r := range readRecords(t, live, topic, int64(len(acked))) {
		values = append(values, string(r.Value))
	}
	seen := map[string]int{}
	for _, v := range values {
		seen[v]++
	}
	for _, n := range acked {
		if c := seen[strconv.Itoa(n)]; c != 1 {
			t.Fatalf("acknowledged record %d is in the log %d times", n, c)
		}
	}
	// In order: the values read are increasing.
	ints := make([]int, 0, len(values))
	for _, v := range values {
		n, _ := strconv.Atoi(v)
		ints = append(ints, n)
	}
	if !sort.IntsAreSorted(ints) || len(slices.Compact(slices.Clone(ints))) != len(ints) {
		t.Fatalf("the log holds the records out of order or twice: %v", firstDiff(ints))
	}
}

// firstDiff describes where ints stops increasing.
func firstDiff(ints []int) string {
	for i := 1; i < len(ints); i++ {
		if ints[i] <= ints[i-1] {
			return fmt.Sprintf("at index %d: %d after %d", i, ints[i], ints[i-1])
		}
	}
	return "increasing"
}
