package test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// TestTransactionVersionsMixed runs, against one `sluice serve`, a
// franz-go transactional producer, which negotiates transaction version 2
// (KIP-890 part 2) from ApiVersions' finalized features, and sarama's,
// which knows only version 1, side by side. franz-go sends no
// AddPartitionsToTxn (Produce v12 adds the partitions) and each of its
// EndTxn (v5) bumps its epoch; sarama's epoch stays. read_committed
// readers of both outputs see exactly the committed transactions.
func TestTransactionVersionsMixed(t *testing.T) {
	s := startTxnScenario(t, "mixed")
	const tv2ID, tv2Out = "mixed-tv2", "mixed-tv2-out"
	createTopic(t, s.addr, tv2Out, 1)

	var sent [64]atomic.Int64 // requests franz-go wrote, by key
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.addr),
		kgo.TransactionalID(tv2ID),
		kgo.TransactionTimeout(30*time.Second),
		kgo.DefaultProduceTopic(tv2Out),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.WithHooks(requestCounter(sent[:])),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	// kgo opts in to version 2 at BeginTransaction once it knows the
	// brokers' features: connect first.
	if err := cl.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	done := make(chan error, 1)
	go func() {
		for k := range txnCount {
			if err := cl.BeginTransaction(); err != nil {
				done <- fmt.Errorf("franz-go transaction %d: begin: %w", k, err)
				return
			}
			var records []*kgo.Record
			for j := range 5 {
				records = append(records, &kgo.Record{Value: []byte(fmt.Sprintf("out-%d-%d", k, j))})
			}
			if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
				done <- fmt.Errorf("franz-go transaction %d: produce: %w", k, err)
				return
			}
			if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(k%2 == 0)); err != nil {
				done <- fmt.Errorf("franz-go transaction %d: end: %w", k, err)
				return
			}
		}
		done <- nil
	}()
	runSaramaTransactions(t, s)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d transactions of each client in %v", txnCount, time.Since(began))

	if n := sent[kmsg.AddPartitionsToTxn].Load(); n != 0 {
		t.Errorf("franz-go sent %d AddPartitionsToTxn: transaction version 2 was not negotiated", n)
	}
	if n := sent[kmsg.EndTxn].Load(); n < txnCount {
		t.Errorf("franz-go sent %d EndTxn for %d transactions", n, txnCount)
	}
	described, err := newAdmin(t, s.addr).DescribeTransactions(ctx, tv2ID, s.txnID)
	if err != nil {
		t.Fatal(err)
	}
	// Both producers got epoch 0 from InitProducerId: version 2 bumps it
	// at each end, version 1 never.
	if d := described[tv2ID]; d.Err != nil || d.ProducerEpoch != txnCount {
		t.Errorf("franz-go's transactional id after %d transactions: epoch %d (%v), want %d", txnCount, d.ProducerEpoch, d.Err, txnCount)
	}
	if d := described[s.txnID]; d.Err != nil || d.ProducerEpoch != 0 {
		t.Errorf("sarama's transactional id after %d transactions: epoch %d (%v), want 0", txnCount, d.ProducerEpoch, d.Err)
	}

	s.check(t)
	var committed []string
	for k := 0; k < txnCount; k += 2 {
		for j := range 5 {
			committed = append(committed, fmt.Sprintf("out-%d-%d", k, j))
		}
	}
	plain, err := kgo.NewClient(kgo.SeedBrokers(s.addr), kgo.DefaultProduceTopic(tv2Out), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := readUntilEnd(t, s.addr, tv2Out, kgo.ReadCommitted()); !slices.Equal(got, append(committed, "end")) {
		t.Errorf("read_committed reader of franz-go's output saw %q,\nwant %q", got, append(committed, "end"))
	}
}

// requestCounter is a kgo hook counting the requests written, by key.
type requestCounter []atomic.Int64

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (c requestCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil && key >= 0 && int(key) < len(c) {
		c[key].Add(1)
	}
}

// rawTxn is a transactional producer driven by hand over one raw
// connection to a single node (coordinator and partition leader).
type rawTxn struct {
	t     *testing.T
	conn  *rawConn
	id    string
	topic string
	pid   int64
	epoch int16
}

// newRawTxn initialises transactional id on the node at addr.
func newRawTxn(t *testing.T, addr, id, topic string) *rawTxn {
	t.Helper()
	p := &rawTxn{t: t, conn: dialRaw(t, addr), id: id, topic: topic}
	eventually(t, "InitProducerId for "+id, func() bool {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 5
		req.TransactionalID, req.TransactionTimeoutMillis = &p.id, 600_000
		resp := p.conn.mustRoundTrip(req).(*kmsg.InitProducerIDResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			if !kerr.IsRetriable(err) && err != kerr.ConcurrentTransactions {
				t.Fatalf("InitProducerId: %v", err)
			}
			return false
		}
		p.pid, p.epoch = resp.ProducerID, resp.ProducerEpoch
		return true
	})
	return p
}

// add adds partition 0 to the transaction (AddPartitionsToTxn v3, as a
// transaction version 1 client does).
func (p *rawTxn) add() {
	p.t.Helper()
	eventually(p.t, "AddPartitionsToTxn for "+p.id, func() bool {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = 3
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = p.id, p.pid, p.epoch
		req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: p.topic, Partitions: []int32{0}}}
		code := p.conn.mustRoundTrip(req).(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode
		if err := kerr.ErrorForCode(code); err != nil {
			if !kerr.IsRetriable(err) && err != kerr.ConcurrentTransactions {
				p.t.Fatalf("AddPartitionsToTxn: %v", err)
			}
			return false
		}
		return true
	})
}

// produce sends one transactional record of value to partition 0 with
// Produce of version, at epoch and sequence, and returns the code,
// retrying NOT_ENOUGH_REPLICAS (the coordinator is busy) as clients do.
func (p *rawTxn) produce(version int16, epoch int16, sequence int32, value string) int16 {
	p.t.Helper()
	b := record.Builder{Producer: &record.Producer{ID: p.pid, Epoch: epoch, BaseSequence: sequence}}
	b.Add(time.Now().UnixMilli(), nil, []byte(value))
	batch, err := b.AppendTo(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	binary.BigEndian.PutUint16(batch[21:], binary.BigEndian.Uint16(batch[21:])|0x10) // transactional
	log.SetCRC(batch)
	var code int16
	eventually(p.t, "a produce not answered NOT_ENOUGH_REPLICAS", func() bool {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = version, -1, 30000, &p.id
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = p.topic
		rt.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batch}}
		req.Topics = append(req.Topics, rt)
		code = p.conn.mustRoundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		return code != kerr.NotEnoughReplicas.Code
	})
	return code
}

// end ends the transaction with EndTxn of version and waits until it is
// complete; it returns the producer epoch of the response (v5).
func (p *rawTxn) end(version int16, commit bool) int16 {
	p.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = p.id, p.pid, p.epoch, commit
	resp := p.conn.mustRoundTrip(req).(*kmsg.EndTxnResponse)
	if resp.ErrorCode != 0 {
		p.t.Fatalf("EndTxn v%d: %v", version, kerr.ErrorForCode(resp.ErrorCode))
	}
	want := "CompleteAbort"
	if commit {
		want = "CompleteCommit"
	}
	eventually(p.t, p.id+" in "+want, func() bool {
		d := kmsg.NewPtrDescribeTransactionsRequest()
		d.TransactionalIDs = []string{p.id}
		st := p.conn.mustRoundTrip(d).(*kmsg.DescribeTransactionsResponse).TransactionStates[0]
		return st.ErrorCode == 0 && st.State == want
	})
	return resp.ProducerEpoch
}

// stable checks that partition 0's last stable offset has reached its
// high watermark: no transaction is left open.
func (p *rawTxn) stable() {
	p.t.Helper()
	hwm := listLatest(p.t, p.conn, p.topic, 0)
	if lso := listLatest(p.t, p.conn, p.topic, 1); lso != hwm {
		p.t.Fatalf("last stable offset %d below the high watermark %d: a transaction hangs", lso, hwm)
	}
}

// TestLateTransactionalProduceRefused checks the hanging-transaction
// guard end to end: a transactional produce arriving after its
// transaction's marker is refused, INVALID_TXN_STATE under transaction
// version 1 (the partition is no longer in a transaction) and
// INVALID_PRODUCER_EPOCH under version 2 (the end bumped the epoch), and
// the last stable offset reaches the high watermark, where the produce
// would otherwise have opened a transaction nobody ends.
func TestLateTransactionalProduceRefused(t *testing.T) {
	srv := startServer(t)
	createTopic(t, srv.Addr, "late-v1", 1)
	createTopic(t, srv.Addr, "late-v2", 1)

	t.Run("version 1", func(t *testing.T) {
		p := newRawTxn(t, srv.Addr, "late-v1-txn", "late-v1")
		p.add()
		if code := p.produce(11, p.epoch, 0, "committed"); code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
		p.end(4, true)
		if code := p.produce(11, p.epoch, 1, "late"); code != kerr.InvalidTxnState.Code {
			t.Fatalf("late produce: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
		}
		p.stable()
	})

	t.Run("version 2", func(t *testing.T) {
		p := newRawTxn(t, srv.Addr, "late-v2-txn", "late-v2")
		old := p.epoch
		// Produce v12 adds the partition to the transaction itself.
		if code := p.produce(12, old, 0, "committed"); code != 0 {
			t.Fatalf("produce v12: %v", kerr.ErrorForCode(code))
		}
		p.epoch = p.end(5, true)
		if p.epoch != old+1 {
			t.Fatalf("EndTxn v5 answered epoch %d, want %d", p.epoch, old+1)
		}
		if code := p.produce(12, old, 1, "late"); code != kerr.InvalidProducerEpoch.Code {
			t.Fatalf("late produce: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
		}
		p.stable()
		// The next transaction, at the bumped epoch, aborted.
		if code := p.produce(12, p.epoch, 0, "aborted"); code != 0 {
			t.Fatalf("produce in the next transaction: %v", kerr.ErrorForCode(code))
		}
		if next := p.end(5, false); next != old+2 {
			t.Fatalf("EndTxn v5 abort answered epoch %d, want %d", next, old+2)
		}
		p.stable()
		plain, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr), kgo.DefaultProduceTopic("late-v2"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("end")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if got := readUntilEnd(t, srv.Addr, "late-v2", kgo.ReadCommitted()); !slices.Equal(got, []string{"committed", "end"}) {
			t.Errorf("read_committed reader saw %q", got)
		}
	})
}

// offsetCommit sends TxnOffsetCommit v5 for group (committing offset of
// partition 0 of the producer's topic) as producer pid at epoch and
// returns the partition's code, retrying COORDINATOR_LOAD_IN_PROGRESS
// and COORDINATOR_NOT_AVAILABLE while the group coordinator starts.
func (p *rawTxn) offsetCommit(group string, pid int64, epoch int16, offset int64) int16 {
	p.t.Helper()
	var code int16
	eventually(p.t, "TxnOffsetCommit answered", func() bool {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = 5
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = p.id, group, pid, epoch
		req.Generation = -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = p.topic
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		code = p.conn.mustRoundTrip(req).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
		return code != kerr.CoordinatorLoadInProgress.Code && code != kerr.CoordinatorNotAvailable.Code
	})
	return code
}

// TestTxnOffsetCommitVersion5 checks TxnOffsetCommit v5 (transaction
// version 2): without AddOffsetsToTxn the group joins the transaction,
// its offset becomes visible at commit, and a stale epoch or an unknown
// producer is refused with nothing written.
func TestTxnOffsetCommitVersion5(t *testing.T) {
	srv := startServer(t)
	createTopic(t, srv.Addr, "offsets-v5", 1)
	p := newRawTxn(t, srv.Addr, "offsets-v5-txn", "offsets-v5")
	old := p.epoch
	if code := p.produce(12, old, 0, "v"); code != 0 {
		t.Fatalf("produce v12: %v", kerr.ErrorForCode(code))
	}
	if code := p.offsetCommit("offsets-v5-group", p.pid, old, 1); code != 0 {
		t.Fatalf("TxnOffsetCommit v5: %v", kerr.ErrorForCode(code))
	}
	p.epoch = p.end(5, true)
	if code := p.offsetCommit("offsets-v5-group", p.pid, old, 7); code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("TxnOffsetCommit v5 at the epoch before the end's bump: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := p.offsetCommit("offsets-v5-group", p.pid+1000, 0, 7); code != kerr.InvalidProducerIDMapping.Code {
		t.Errorf("TxnOffsetCommit v5 of an unknown producer: %v, want INVALID_PRODUCER_ID_MAPPING", kerr.ErrorForCode(code))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t, srv.Addr)
	eventually(t, "the committed offset of offsets-v5-group", func() bool {
		fetched, err := adm.FetchOffsets(ctx, "offsets-v5-group")
		if err != nil {
			return false
		}
		o, ok := fetched.Lookup("offsets-v5", 0)
		if ok && o.Err == nil && o.At != 1 && o.At != -1 {
			t.Fatalf("committed offset %d, want 1", o.At)
		}
		return ok && o.Err == nil && o.At == 1
	})
}
