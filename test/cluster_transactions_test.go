package test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnCoordinator asks the node at addr which node coordinates
// transactional id (FindCoordinator key type 1); -1 while it knows none
// or does not answer.
func txnCoordinator(t *testing.T, addr, id string) int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("sluice-e2e-find"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType, req.CoordinatorKey = 1, id
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		return -1
	}
	return resp.NodeID
}

// partitionLeader returns the leader of topic's partition as the node at
// addr names it (-1: none).
func partitionLeader(t *testing.T, addr, topic string, partition int32) int32 {
	t.Helper()
	for _, mt := range metadataOf(t, addr).Topics {
		if mt.Topic == nil || *mt.Topic != topic {
			continue
		}
		for _, mp := range mt.Partitions {
			if mp.Partition == partition {
				return mp.Leader
			}
		}
	}
	return -1
}

// createClusterTopic creates topic with partitions partitions replicated
// on every node, retrying while the cluster elects its controller.
func createClusterTopic(t *testing.T, seeds []string, topic string, partitions int32) {
	t.Helper()
	adm := clusterAdmin(t, seeds)
	eventually(t, "create "+topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := adm.CreateTopic(ctx, partitions, int16(len(seeds)), nil, topic)
		return err == nil && resp.Err == nil
	})
	eventually(t, "every partition of "+topic+" has a leader", func() bool {
		for p := range partitions {
			if partitionLeader(t, seeds[0], topic, p) < 1 {
				return false
			}
		}
		return true
	})
}

// txnOutcome is what a transactional producer was told of one
// transaction.
type txnOutcome int

const (
	txnCommitted txnOutcome = iota // EndTransaction(commit) succeeded
	txnAborted                     // EndTransaction(abort) succeeded
	txnUncertain                   // an error left the outcome unknown
)

// txnStream runs transactions of a transactional producer, each writing
// "<n>/<partition>" to every partition of topic, until stopped; a
// transaction whose produce or end fails is given up and the producer
// recreated (its InitProducerId aborts what the old one left ongoing).
type txnStream struct {
	t          *testing.T
	seeds      []string
	topic      string
	id         string
	partitions int32

	mu       sync.Mutex
	outcomes []txnOutcome
	stop     bool

	// sent counts the requests its clients wrote, by key.
	sent [64]atomic.Int64
}

func (s *txnStream) client() *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.seeds...), kgo.ClientID("sluice-e2e-txn-stream"),
		kgo.TransactionalID(s.id), kgo.TransactionTimeout(20*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryTimeout(10*time.Second), kgo.RecordDeliveryTimeout(10*time.Second),
		kgo.WithHooks(requestCounter(s.sent[:])))
	if err != nil {
		s.t.Errorf("transactional client: %v", err)
		return nil
	}
	return cl
}

func (s *txnStream) run() {
	cl := s.client()
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	for n := 0; cl != nil; n++ {
		s.mu.Lock()
		stop := s.stop
		s.mu.Unlock()
		if stop {
			return
		}
		outcome := s.one(cl, n)
		s.mu.Lock()
		s.outcomes = append(s.outcomes, outcome)
		s.mu.Unlock()
		if outcome == txnUncertain {
			cl.Close()
			cl = s.client()
		}
	}
}

// one runs transaction n: commit, or abort when producing failed. A
// transaction is given 15 s: a client may keep asking a killed
// coordinator (franz-go drops a broker only once Metadata stops listing
// it, and Sluice lists every registered node), and a new client finds
// the new one.
func (s *txnStream) one(cl *kgo.Client, n int) txnOutcome {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		return txnUncertain
	}
	var records []*kgo.Record
	for p := range s.partitions {
		records = append(records, &kgo.Record{Topic: s.topic, Partition: p, Value: []byte(fmt.Sprintf("%d/%d", n, p))})
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		if err := cl.AbortBufferedRecords(ctx); err != nil {
			return txnUncertain
		}
		if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
			return txnUncertain
		}
		return txnAborted
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return txnUncertain
	}
	return txnCommitted
}

// waitOutcomes waits until n more transactions have ended.
func (s *txnStream) waitOutcomes(n int) {
	s.t.Helper()
	s.mu.Lock()
	want := len(s.outcomes) + n
	s.mu.Unlock()
	eventuallyWithin(s.t, 2*testTimeout, fmt.Sprintf("%d more transactions end", n), func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.outcomes) >= want
	})
}

// checkAtomic checks what a read_committed reader sees of the stream:
// every committed transaction on every partition once, no aborted one,
// each uncertain one on all partitions or none, in order.
func (s *txnStream) checkAtomic(values map[int32][]string) {
	s.t.Helper()
	seen := map[int]int{} // transaction -> partitions holding it
	for p := range s.partitions {
		last := -1
		for _, v := range values[p] {
			n, err := strconv.Atoi(strings.TrimSuffix(v, fmt.Sprintf("/%d", p)))
			if err != nil || !strings.HasSuffix(v, fmt.Sprintf("/%d", p)) {
				s.t.Errorf("partition %d holds %q", p, v)
				continue
			}
			if n <= last {
				s.t.Errorf("partition %d: transaction %d after %d (duplicate or reordered)", p, n, last)
			}
			last = n
			seen[n]++
		}
	}
	counts := map[txnOutcome]int{}
	for n, outcome := range s.outcomes {
		counts[outcome]++
		switch got := seen[n]; {
		case outcome == txnCommitted && got != int(s.partitions):
			s.t.Errorf("committed transaction %d is on %d of %d partitions", n, got, s.partitions)
		case outcome == txnAborted && got != 0:
			s.t.Errorf("aborted transaction %d is visible on %d partitions", n, got)
		case outcome == txnUncertain && got != 0 && got != int(s.partitions):
			s.t.Errorf("transaction %d is on %d of %d partitions: not atomic", n, got, s.partitions)
		}
	}
	s.t.Logf("%d transactions: %d committed, %d aborted, %d uncertain", len(s.outcomes), counts[txnCommitted], counts[txnAborted], counts[txnUncertain])
	if counts[txnCommitted] == 0 {
		s.t.Error("no transaction committed")
	}
}

// checkNoHanging waits until no node lists an ongoing or half-completed
// transaction.
func checkNoHanging(t *testing.T, seeds []string) {
	t.Helper()
	adm := clusterAdmin(t, seeds)
	eventually(t, "no transaction left ongoing or half-completed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing", "PrepareCommit", "PrepareAbort"})
		if err != nil {
			return false
		}
		return len(listed.Sorted()) == 0
	})
}

// TestClusterTransactionsKill9: three nodes as processes; a transactional
// producer writes a stream of transactions over two partitions replicated
// on all three while the coordinator of its transactional id, then the
// leaders of the data partitions, are killed with kill -9 and restarted.
// A read_committed reader sees every committed transaction on both
// partitions exactly once, in order, nothing of the aborted ones, each
// transaction whose outcome the producer did not learn all or nothing,
// and no transaction stays ongoing or half-completed.
func TestClusterTransactionsKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	cluster := startLinkedCluster(t, 3)
	procs := cluster.procs
	seeds := addrsOf(procs...)
	const topic, id, partitions = "eos-kill", "eos-kill-producer", 2
	createClusterTopic(t, seeds, topic, partitions)

	stream := &txnStream{t: t, seeds: seeds, topic: topic, id: id, partitions: partitions}
	done := make(chan struct{})
	go func() {
		defer close(done)
		stream.run()
	}()
	stopped := false
	stopStream := func() {
		if !stopped {
			stopped = true
			stream.mu.Lock()
			stream.stop = true
			stream.mu.Unlock()
			<-done
		}
	}
	t.Cleanup(stopStream)

	// kill kills node (1-based), lets transactions run without it, and
	// restarts it.
	kill := func(what string, node int32) {
		t.Helper()
		if node < 1 {
			t.Fatalf("no %s known", what)
		}
		t.Logf("kill -9 %s, node %d", what, node)
		procs[node-1].Kill()
		stream.waitOutcomes(5)
		procs[node-1].Restart()
		procs[node-1].waitListening()
		stream.waitOutcomes(3)
	}
	alive := func() string {
		for _, p := range procs {
			if p.running() {
				return p.Addr
			}
		}
		return seeds[0]
	}
	stream.waitOutcomes(10)
	var coordinator int32
	eventually(t, "a coordinator of "+id, func() bool {
		coordinator = txnCoordinator(t, alive(), id)
		return coordinator > 0
	})
	kill("the transaction coordinator", coordinator)
	for p := range int32(partitions) {
		var leader int32
		eventually(t, fmt.Sprintf("a leader of %s-%d", topic, p), func() bool {
			leader = partitionLeader(t, alive(), topic, p)
			return leader > 0
		})
		kill(fmt.Sprintf("the leader of %s-%d", topic, p), leader)
	}
	stopStream()

	stream.checkAtomic(readCommitted(t, seeds, topic, partitions))
	checkNoHanging(t, seeds)
	// The clients ran transaction version 2 (KIP-890 part 2): Produce
	// v12 added the partitions, and every EndTxn bumped the epoch.
	if n, ends := stream.sent[kmsg.AddPartitionsToTxn].Load(), stream.sent[kmsg.EndTxn].Load(); n != 0 || ends == 0 {
		t.Errorf("the producer sent %d AddPartitionsToTxn and %d EndTxn: transaction version 2 was not used", n, ends)
	}
}

// TestClusterTransactConsumeTransformKill9: three nodes as processes; a
// franz-go GroupTransactSession consume-transform-produce loop (offsets
// committed in its transactions) runs while the coordinator of its
// transactional id and the leaders of the output partitions are killed
// with kill -9 and restarted: the output, read with read_committed, holds
// every input record exactly once, in order, and no transaction stays
// hanging.
func TestClusterTransactConsumeTransformKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	cluster := startLinkedCluster(t, 3)
	procs := cluster.procs
	seeds := addrsOf(procs...)
	const in, out, group, id = "eos-in", "eos-out", "eos-group", "eos-transformer"
	const partitions, perPartition = 2, 500
	createClusterTopic(t, seeds, in, partitions)
	createClusterTopic(t, seeds, out, partitions)
	produceInput(t, seeds, in, partitions, perPartition)

	tr, stop, done := startTransformer(t, seeds, group, id, in, out, 5, 10, true, kgo.RetryTimeout(10*time.Second))
	alive := func() string {
		for _, p := range procs {
			if p.running() {
				return p.Addr
			}
		}
		return seeds[0]
	}
	// waitCommits waits until the transformer has committed n more
	// transactions (its own count: an admin client may also keep asking
	// a killed group coordinator).
	began := time.Now()
	waitCommits := func(n int, what string) {
		t.Helper()
		committed, _, _ := tr.counts()
		eventuallyWithin(t, 2*testTimeout, what, func() bool {
			now, _, err := tr.counts()
			if err != nil {
				t.Fatalf("transformer: %v", err)
			}
			return now >= committed+n
		})
		t.Logf("%6s %s", time.Since(began).Round(100*time.Millisecond), what)
	}
	// The transformer is paced: each phase lets 10 transactions run
	// (aborts and failures take some) and waits for 3 commits, so every
	// kill lands in the middle of the stream.
	kill := func(what string, node int32) {
		t.Helper()
		t.Logf("kill -9 %s, node %d", what, node)
		procs[node-1].Kill()
		tr.allow(10)
		waitCommits(3, fmt.Sprintf("3 transactions commit without node %d", node))
		procs[node-1].Restart()
		procs[node-1].waitListening()
		tr.allow(10)
		waitCommits(3, fmt.Sprintf("3 transactions commit after node %d restarted", node))
	}
	tr.allow(10)
	waitCommits(3, "3 transactions commit")
	var coordinator int32
	eventually(t, "a coordinator of "+id, func() bool {
		coordinator = txnCoordinator(t, alive(), id)
		return coordinator > 0
	})
	kill("the transaction coordinator", coordinator)
	for p := range int32(partitions) {
		var leader int32
		eventually(t, fmt.Sprintf("a leader of %s-%d", out, p), func() bool {
			leader = partitionLeader(t, alive(), out, p)
			return leader > 0
		})
		kill(fmt.Sprintf("the leader of %s-%d", out, p), leader)
	}
	tr.unpace()
	waitTransformed(t, tr, seeds, group, in, partitions, perPartition, 2*testTimeout)
	stop()
	<-done
	checkExactlyOnce(t, readCommitted(t, seeds, out, partitions), partitions, perPartition)
	checkNoHanging(t, seeds)
}
