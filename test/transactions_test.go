package test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/txn"
)

// transformer is a consume-transform-produce loop in a franz-go
// GroupTransactSession: it reads input records, writes each as
// "<input partition>/<input offset>" to the same partition of output, and
// commits the input offsets in the same transaction; every abortEvery-th
// transaction is aborted instead (the session then rewinds to the
// committed offsets, so its records are processed again). With restart
// set, a session that fails is closed and a new one started (as an
// application restarts), else the failure is the test's.
type transformer struct {
	t          *testing.T
	opts       []kgo.Opt
	out        string
	abortEvery int
	restart    bool
	// maxPoll bounds the records of one transaction.
	maxPoll int
	// tokens, if set, paces the transformer: each transaction takes one
	// (allow gives them; unpace lets it run freely), so a test decides
	// how many run between two of its steps.
	tokens chan struct{}

	mu        sync.Mutex
	committed int // transactions committed
	aborted   int // transactions aborted
	restarts  int // sessions restarted after an error
	err       error
}

func startTransformer(t *testing.T, seeds []string, group, txnID, in, out string, abortEvery, maxPoll int, restart bool, extra ...kgo.Opt) (*transformer, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("sluice-e2e-transformer"),
		kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(30 * time.Second),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.SessionTimeout(6 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryTimeout(testTimeout),
	}, extra...)
	tr := &transformer{t: t, opts: opts, out: out, abortEvery: abortEvery, maxPoll: maxPoll, restart: restart}
	if restart {
		// Restartable transformers run in cluster tests, which pace
		// them around their kills.
		tr.paced()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			sess, err := kgo.NewGroupTransactSession(tr.opts...)
			if err != nil {
				tr.fail(fmt.Errorf("NewGroupTransactSession: %w", err))
				return
			}
			err = tr.run(ctx, sess)
			sess.Close()
			if err == nil {
				return
			}
			if !tr.restart {
				tr.fail(err)
				return
			}
			tr.mu.Lock()
			tr.restarts++
			tr.mu.Unlock()
			t.Logf("transformer session restarted after: %v; %s", err, txnDiagnosis(ctx, seeds, txnID, group))
			// As Java's initTransactions at an application's start:
			// fence the failed session's producer, aborting what it
			// left open, before consuming again (the committed offsets
			// stay unstable while its transaction is open).
			if err := fenceTransactionalID(ctx, seeds, txnID); err != nil {
				t.Logf("fence %s: %v", txnID, err)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return tr, cancel, done
}

// txnDiagnosis describes transactional id and the stability of group's
// committed offsets, for the log of a failing test.
func txnDiagnosis(ctx context.Context, seeds []string, id, group string) string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("sluice-e2e-diagnosis"), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		return err.Error()
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out []string
	describe := kmsg.NewPtrDescribeTransactionsRequest()
	describe.TransactionalIDs = []string{id}
	if resp, err := describe.RequestWith(ctx, cl); err != nil {
		out = append(out, "describe: "+err.Error())
	} else {
		for _, st := range resp.TransactionStates {
			out = append(out, fmt.Sprintf("%s: %v %s pid %d/%d %+v", id, kerr.ErrorForCode(st.ErrorCode), st.State, st.ProducerID, st.ProducerEpoch, st.Topics))
		}
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Group, fetch.RequireStable = group, true
	if resp, err := fetch.RequestWith(ctx, cl); err != nil {
		out = append(out, "offset fetch: "+err.Error())
	} else {
		out = append(out, fmt.Sprintf("offset fetch (stable): %v", kerr.ErrorForCode(resp.ErrorCode)))
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				out = append(out, fmt.Sprintf("%s-%d@%d %v", t.Topic, p.Partition, p.Offset, kerr.ErrorForCode(p.ErrorCode)))
			}
		}
	}
	return strings.Join(out, "; ")
}

// fenceTransactionalID sends InitProducerId for id until its
// coordinator answers it (it answers CONCURRENT_TRANSACTIONS while it
// aborts the previous producer's transaction), bounded by 30 s.
func fenceTransactionalID(ctx context.Context, seeds []string, id string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("sluice-e2e-fence"), kgo.RetryTimeout(10*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch = &id, 30000, -1, -1
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && resp.ErrorCode == 0 {
			return nil
		}
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run transforms with sess until ctx ends (nil) or a transaction fails.
func (tr *transformer) run(ctx context.Context, sess *kgo.GroupTransactSession) error {
	for n := 1; ctx.Err() == nil; {
		// Small transactions: many of them, commits and aborts. A
		// restartable session that gets nothing for 20 s is restarted:
		// a client may keep asking a killed coordinator (franz-go drops
		// a broker only once Metadata stops listing it, and Sluice lists
		// every registered node); a new session finds the new one.
		pollCtx, cancelPoll := ctx, context.CancelFunc(func() {})
		if tr.restart {
			pollCtx, cancelPoll = context.WithTimeout(ctx, 20*time.Second)
		}
		fetches := sess.PollRecords(pollCtx, tr.maxPoll)
		idle := pollCtx.Err() != nil
		cancelPoll()
		if ctx.Err() != nil {
			return nil
		}
		if idle {
			return errors.New("no records for 20 s")
		}
		var records []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			records = append(records, &kgo.Record{
				Topic: tr.out, Partition: r.Partition, Key: r.Key,
				Value: []byte(fmt.Sprintf("%d/%d", r.Partition, r.Offset)),
			})
		})
		if len(records) == 0 {
			continue
		}
		if tr.tokens != nil {
			select {
			case <-tr.tokens:
			case <-ctx.Done():
				return nil
			}
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		for _, r := range records {
			sess.Produce(ctx, r, nil)
		}
		commit := kgo.TryCommit
		if tr.abortEvery > 0 && n%tr.abortEvery == 0 {
			commit = kgo.TryAbort
		}
		n++
		endCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		committed, err := sess.End(endCtx, commit)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("end transaction: %w", err)
		}
		tr.mu.Lock()
		if committed {
			tr.committed++
		} else {
			tr.aborted++
		}
		tr.mu.Unlock()
	}
	return nil
}

// paced makes the transformer wait for allow before each transaction;
// call it before the first one.
func (tr *transformer) paced() { tr.tokens = make(chan struct{}, 1<<16) }

// allow lets n more transactions run.
func (tr *transformer) allow(n int) {
	for range n {
		tr.tokens <- struct{}{}
	}
}

// unpace lets the transformer run freely from now on.
func (tr *transformer) unpace() { close(tr.tokens) }

func (tr *transformer) fail(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.err == nil {
		tr.err = err
	}
}

func (tr *transformer) counts() (committed, aborted int, err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.committed, tr.aborted, tr.err
}

// readCommitted reads topic (partitions 0..partitions-1) with
// read_committed from the start. It first appends a sentinel record
// (not transactional) to every partition and reads until each sentinel
// is seen, so every transaction ended before the call is read in full.
// It returns the values read before the sentinels, per partition, in
// offset order.
func readCommitted(t *testing.T, seeds []string, topic string, partitions int32) map[int32][]string {
	t.Helper()
	producer := newProducer(t, seeds, topic, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var sentinels []*kgo.Record
	for p := range partitions {
		sentinels = append(sentinels, &kgo.Record{Topic: topic, Partition: p, Value: []byte("sentinel")})
	}
	produceAll(t, producer, sentinels)
	consumer, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("sluice-e2e-reader"),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	values := map[int32][]string{}
	seen := map[int32]bool{}
	for int32(len(seen)) < partitions {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed read of %s: sentinels seen on %d of %d partitions", topic, len(seen), partitions)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			switch {
			case seen[r.Partition]:
			case string(r.Value) == "sentinel":
				seen[r.Partition] = true
			default:
				values[r.Partition] = append(values[r.Partition], string(r.Value))
			}
		})
	}
	return values
}

// checkExactlyOnce checks that output holds, per partition p, the input
// offsets [0, perPartition) of input partition p once each, in order.
func checkExactlyOnce(t *testing.T, values map[int32][]string, partitions int32, perPartition int) {
	t.Helper()
	for p := range partitions {
		got := values[p]
		if len(got) != perPartition {
			t.Errorf("output partition %d holds %d records, want %d", p, len(got), perPartition)
		}
		for i, v := range got {
			if want := fmt.Sprintf("%d/%d", p, i); v != want {
				t.Errorf("output partition %d record %d is %q, want %q (a duplicate, a loss or a record of an aborted transaction)", p, i, v, want)
				break
			}
		}
	}
}

// produceInput writes perPartition records to every partition of topic.
func produceInput(t *testing.T, seeds []string, topic string, partitions int32, perPartition int) {
	t.Helper()
	cl := newProducer(t, seeds, topic, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var records []*kgo.Record
	for p := range partitions {
		for i := range perPartition {
			records = append(records, &kgo.Record{Topic: topic, Partition: p, Value: []byte(strconv.Itoa(i))})
		}
	}
	produceAll(t, cl, records)
}

// waitTransformed waits until the transformer's group has committed the
// end of every input partition, failing on a transformer error.
func waitTransformed(t *testing.T, tr *transformer, seeds []string, group, in string, partitions int32, perPartition int, within time.Duration) {
	t.Helper()
	eventuallyWithin(t, within, "the transformer commits the whole input", func() bool {
		if _, _, err := tr.counts(); err != nil {
			t.Fatalf("transformer: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// A new client each time: one may keep asking a killed group
		// coordinator.
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("sluice-e2e-offsets"))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		offsets, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		for p := range partitions {
			o, ok := offsets.Lookup(in, p)
			if !ok || o.At < int64(perPartition) {
				return false
			}
		}
		return true
	})
}

// TestTransactConsumeTransformProduce runs a franz-go GroupTransactSession
// consume-transform-produce loop that commits most transactions and aborts
// every third: a read_committed reader of the output sees every input
// record exactly once, in order, and nothing of the aborted transactions.
func TestTransactConsumeTransformProduce(t *testing.T) {
	srv := startServer(t)
	seeds := []string{srv.Addr}
	const partitions, perPartition = 3, 200
	createTopic(t, srv.Addr, "tx-in", partitions)
	createTopic(t, srv.Addr, "tx-out", partitions)
	produceInput(t, seeds, "tx-in", partitions, perPartition)

	var sent [64]atomic.Int64 // requests the transformer wrote, by key
	tr, stop, done := startTransformer(t, seeds, "tx-group", "tx-transformer", "tx-in", "tx-out", 3, 25, false,
		kgo.WithHooks(requestCounter(sent[:])))
	waitTransformed(t, tr, seeds, "tx-group", "tx-in", partitions, perPartition, testTimeout)
	stop()
	<-done
	committed, aborted, err := tr.counts()
	if err != nil {
		t.Fatal(err)
	}
	if committed == 0 || aborted == 0 {
		t.Fatalf("%d transactions committed, %d aborted: the test needs both", committed, aborted)
	}
	t.Logf("%d transactions committed, %d aborted", committed, aborted)
	checkExactlyOnce(t, readCommitted(t, seeds, "tx-out", partitions), partitions, perPartition)
	// Transaction version 2: the group joined each transaction with
	// TxnOffsetCommit v5 and the partitions with Produce v12, never
	// explicitly.
	if adds, offsets, commits := sent[kmsg.AddPartitionsToTxn].Load(), sent[kmsg.AddOffsetsToTxn].Load(), sent[kmsg.TxnOffsetCommit].Load(); adds+offsets != 0 || commits == 0 {
		t.Errorf("the transformer sent %d AddPartitionsToTxn, %d AddOffsetsToTxn, %d TxnOffsetCommit: transaction version 2 was not used", adds, offsets, commits)
	}

	adm := newAdmin(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	described, err := adm.DescribeTransactions(ctx, "tx-transformer")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := described["tx-transformer"]
	if !ok || d.Err != nil || (d.State != "CompleteCommit" && d.State != "CompleteAbort") {
		t.Errorf("DescribeTransactions after the loop: %+v", d)
	}
}

// TestTransactionFencing checks that a second producer with the same
// transactional id fences the first: the first's commit fails, its
// records are aborted, and the second's are committed.
func TestTransactionFencing(t *testing.T) {
	srv := startServer(t)
	seeds := []string{srv.Addr}
	createTopic(t, srv.Addr, "fence", 1)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	opts := []kgo.Opt{kgo.TransactionalID("fenced-id"), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	first := newClient(t, srv.Addr, opts...)
	if err := first.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := first.ProduceSync(ctx, &kgo.Record{Topic: "fence", Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	second := newClient(t, srv.Addr, opts...)
	if err := second.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	// The second instance's InitProducerId aborts the first's
	// transaction and fences it.
	if err := second.ProduceSync(ctx, &kgo.Record{Topic: "fence", Value: []byte("second")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := second.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	err := first.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Errorf("fenced producer's commit: %v, want PRODUCER_FENCED", err)
	}
	values := readCommitted(t, seeds, "fence", 1)
	if strings.Join(values[0], ",") != "second" {
		t.Errorf("read_committed: %v, want only the second producer's record", values[0])
	}
}

// TestTransactionTimeoutAborted checks that the coordinator aborts a
// transaction open longer than its transaction.timeout.ms: its records
// never become visible to a read_committed reader, the producer is
// fenced, and a new producer with the same id works.
func TestTransactionTimeoutAborted(t *testing.T) {
	srv := startServer(t, withTransactions(func(c *txn.Config) { c.AbortTimedOutInterval = 50 * time.Millisecond }))
	seeds := []string{srv.Addr}
	createTopic(t, srv.Addr, "slow", 1)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	opts := []kgo.Opt{kgo.TransactionalID("slow-id"), kgo.TransactionTimeout(time.Second)}
	slow := newClient(t, srv.Addr, opts...)
	if err := slow.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := slow.ProduceSync(ctx, &kgo.Record{Topic: "slow", Value: []byte("too-late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, srv.Addr)
	eventually(t, "the coordinator aborts the timed-out transaction", func() bool {
		d, err := adm.DescribeTransactions(ctx, "slow-id")
		return err == nil && d["slow-id"].State == "CompleteAbort"
	})
	if err := slow.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the timed-out producer committed")
	}
	again := newClient(t, srv.Addr, opts...)
	if err := again.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := again.ProduceSync(ctx, &kgo.Record{Topic: "slow", Value: []byte("in-time")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := again.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if values := readCommitted(t, seeds, "slow", 1); strings.Join(values[0], ",") != "in-time" {
		t.Errorf("read_committed: %v, want only the committed record", values[0])
	}
}
