package wire

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/txn"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication"
)

// fakeTxns is a TransactionCoordinator whose verify-only
// AddPartitionsToTxn answers code and counts the calls.
type fakeTxns struct {
	mu       sync.Mutex
	code     int16
	verifies int
	adds     int // from brokers (v4+), not VerifyOnly
	found    int
	// asked, when set, runs at each AddPartitionsToTxn before it is
	// answered (without mu).
	asked func()
}

func (f *fakeTxns) FindCoordinator(_ context.Context, req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	f.mu.Lock()
	f.found++
	f.mu.Unlock()
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	resp.NodeID = 1
	return resp
}

func (f *fakeTxns) InitProducerID(_ context.Context, req *kmsg.InitProducerIDRequest, _ txn.AllocateFunc) *kmsg.InitProducerIDResponse {
	return req.ResponseKind().(*kmsg.InitProducerIDResponse)
}

func (f *fakeTxns) AddPartitionsToTxn(_ context.Context, req *kmsg.AddPartitionsToTxnRequest) *kmsg.AddPartitionsToTxnResponse {
	f.mu.Lock()
	asked := f.asked
	f.mu.Unlock()
	if asked != nil {
		asked()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	for _, tx := range req.Transactions {
		if tx.VerifyOnly {
			f.verifies++
		} else {
			f.adds++
		}
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		for _, t := range tx.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTransactionTopicPartition{Partition: p, ErrorCode: f.code})
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp
}

func (f *fakeTxns) AddOffsetsToTxn(_ context.Context, req *kmsg.AddOffsetsToTxnRequest) *kmsg.AddOffsetsToTxnResponse {
	return req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
}

func (f *fakeTxns) EndTxn(_ context.Context, req *kmsg.EndTxnRequest, _ txn.AllocateFunc) *kmsg.EndTxnResponse {
	return req.ResponseKind().(*kmsg.EndTxnResponse)
}

func (f *fakeTxns) DescribeTransactions(_ context.Context, req *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	return req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
}

func (f *fakeTxns) ListTransactions(_ context.Context, req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	return req.ResponseKind().(*kmsg.ListTransactionsResponse)
}

func (f *fakeTxns) set(code int16) {
	f.mu.Lock()
	f.code = code
	f.mu.Unlock()
}

func (f *fakeTxns) verifyCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.verifies
}

// transactionalBatch returns one record in a transactional batch of
// producer pid at epoch.
func transactionalBatch(t *testing.T, pid int64, epoch int16) []byte {
	t.Helper()
	var b record.Builder
	b.Add(1, nil, []byte("v"))
	raw, err := b.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := log.ParseBatchHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	const attributeTransactional = 0x10
	h.Attributes |= attributeTransactional
	h.ProducerID, h.ProducerEpoch, h.BaseSequence = pid, epoch, 0
	return log.AppendBatch(nil, h, raw[log.BatchHeaderSize:])
}

// TestTransactionalProduceVerified checks produce verification against
// the transaction coordinator: refusals are Kafka's codes with nothing
// stored, a positive answer is cached until a marker is written on the
// partition, and a coordinator that cannot answer gives
// NOT_ENOUGH_REPLICAS.
func TestTransactionalProduceVerified(t *testing.T) {
	txns := &fakeTxns{}
	ts := startTestServer(t, Options{Groups: &fakeGroups{}, Transactions: txns})
	if _, err := ts.cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ts.addr)
	id := "tx"
	produce := func(corr int32) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(11)
		req.Acks, req.TimeoutMillis, req.TransactionID = -1, 5000, &id
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "t"
		rt.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: transactionalBatch(t, 7, 0)}}
		req.Topics = append(req.Topics, rt)
		c.send(req, corr)
		return c.receive(req, corr, 11).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	for i, tc := range []struct {
		name      string
		coord     int16
		want      int16
		verifying bool // the coordinator is asked
	}{
		{"not in the transaction", kerr.InvalidTxnState.Code, kerr.InvalidTxnState.Code, true},
		{"refusals are not cached", kerr.InvalidTxnState.Code, kerr.InvalidTxnState.Code, true},
		{"stale epoch", kerr.InvalidProducerEpoch.Code, kerr.InvalidProducerEpoch.Code, true},
		{"unknown producer id", kerr.InvalidProducerIDMapping.Code, kerr.InvalidTxnState.Code, true},
		{"coordinator moving", kerr.NotCoordinator.Code, kerr.NotEnoughReplicas.Code, true},
		{"coordinator busy", kerr.ConcurrentTransactions.Code, kerr.NotEnoughReplicas.Code, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			txns.set(tc.coord)
			before := txns.verifyCalls()
			if got := produce(int32(i)); got != tc.want {
				t.Errorf("produce: %v, want %v", kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
			}
			if asked := txns.verifyCalls() > before; asked != tc.verifying {
				t.Errorf("coordinator asked: %v, want %v", asked, tc.verifying)
			}
		})
	}
	p, err := ts.cluster.Partition("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	if hwm := p.Offsets().HighWatermark; hwm != 0 {
		t.Fatalf("refused produces stored records: high watermark %d", hwm)
	}

	// Verified: the next produce of the transaction is not verified again
	// (whatever the partition then makes of the batch) until a marker is
	// written for the producer.
	txns.set(0)
	produce(100)
	before := txns.verifyCalls()
	produce(101)
	if txns.verifyCalls() != before {
		t.Error("a verified partition was verified again")
	}
	_ = ts.writeTxnMarker(context.Background(), "t", 0, partition.TxnMarker{ProducerID: 7, ProducerEpoch: 0, Commit: true})
	produce(102)
	if txns.verifyCalls() != before+1 {
		t.Error("not verified again after a marker")
	}

	// Produce v12 (transaction version 2) has the coordinator add the
	// partition, once per transaction, instead of verifying it.
	produce12 := func(corr int32, epoch int16) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(12)
		req.Acks, req.TimeoutMillis, req.TransactionID = -1, 5000, &id
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "t"
		rt.Partitions = []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: transactionalBatch(t, 8, epoch)}}
		req.Topics = append(req.Topics, rt)
		c.send(req, corr)
		return c.receive(req, corr, 12).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	verifies := txns.verifyCalls()
	if got := produce12(200, 0); got != 0 {
		t.Fatalf("produce v12: %v", kerr.ErrorForCode(got))
	}
	produce12(201, 0)
	txns.mu.Lock()
	adds := txns.adds
	txns.mu.Unlock()
	if adds != 1 || txns.verifyCalls() != verifies {
		t.Errorf("produce v12: %d adds and %d verifications, want 1 and 0", adds, txns.verifyCalls()-verifies)
	}
}

// TestTransactionAPIsNeedCoordinator checks that transactional requests
// are refused, and the transaction APIs not advertised, without a
// transaction coordinator, and that FindCoordinator key type 1 reaches
// it when there is one.
func TestTransactionAPIsNeedCoordinator(t *testing.T) {
	for _, tc := range []struct {
		name string
		txns TransactionCoordinator
	}{{"without", nil}, {"with", &fakeTxns{}}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Groups: &fakeGroups{}}
			if tc.txns != nil {
				opts.Transactions = tc.txns
			}
			ts := startTestServer(t, opts)
			c := dial(t, ts.addr)
			versions := kmsg.NewPtrApiVersionsRequest()
			versions.SetVersion(3)
			c.send(versions, 1)
			advertised := map[int16]bool{}
			vresp := c.receive(versions, 1, 3).(*kmsg.ApiVersionsResponse)
			for _, k := range vresp.ApiKeys {
				advertised[k.ApiKey] = true
			}
			// transaction.version 2 is finalized only with a
			// transaction coordinator (KIP-890 part 2).
			finalized := len(vresp.FinalizedFeatures) == 1 && vresp.FinalizedFeatures[0].Name == "transaction.version" &&
				vresp.FinalizedFeatures[0].MaxVersionLevel == 2 && vresp.FinalizedFeatures[0].MinVersionLevel == 2 &&
				vresp.FinalizedFeaturesEpoch >= 0 && len(vresp.SupportedFeatures) == 1 && vresp.SupportedFeatures[0].MaxVersion == 2
			if finalized != (tc.txns != nil) || tc.txns == nil && (len(vresp.FinalizedFeatures) > 0 || vresp.FinalizedFeaturesEpoch != -1) {
				t.Errorf("features: supported %+v, finalized %+v epoch %d", vresp.SupportedFeatures, vresp.FinalizedFeatures, vresp.FinalizedFeaturesEpoch)
			}
			for _, key := range []int16{24, 25, 26, 65, 66} {
				if advertised[key] != (tc.txns != nil) {
					t.Errorf("key %d advertised: %v", key, advertised[key])
				}
			}
			init := kmsg.NewPtrInitProducerIDRequest()
			init.SetVersion(4)
			id := "tx"
			init.TransactionalID, init.TransactionTimeoutMillis = &id, 1000
			c.send(init, 2)
			code := c.receive(init, 2, 4).(*kmsg.InitProducerIDResponse).ErrorCode
			if tc.txns == nil && code != kerr.TransactionalIDAuthorizationFailed.Code {
				t.Errorf("InitProducerId without a coordinator: %v", kerr.ErrorForCode(code))
			}
			find := kmsg.NewPtrFindCoordinatorRequest()
			find.SetVersion(3)
			find.CoordinatorType, find.CoordinatorKey = 1, id
			c.send(find, 3)
			c.receive(find, 3, 3)
			if f, ok := tc.txns.(*fakeTxns); ok && f.found != 1 {
				t.Errorf("FindCoordinator key type 1 reached the transaction coordinator %d times", f.found)
			}
		})
	}
}

// TestVerifyRequestReachesRemoteCoordinator sends the verify-only
// AddPartitionsToTxn the way askTxnCoordinator sends it to another node
// (a kgo client pinned to the broker): kgo must keep it batched (v4+),
// for the coordinator to see a verification.
func TestVerifyRequestReachesRemoteCoordinator(t *testing.T) {
	txns := &fakeTxns{code: kerr.InvalidTxnState.Code}
	ts := startTestServer(t, Options{Groups: &fakeGroups{}, Transactions: txns})
	cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ClientID(forwardClientPrefix+"2"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 4
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = "tx", 7, 0, true
	tx.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "t", Partitions: []int32{0}}}
	req.Transactions = append(req.Transactions, tx)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kresp, err := cl.Broker(1).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.AddPartitionsToTxnResponse)
	// kgo negotiates v5, which keeps v4's batched form and VerifyOnly.
	if resp.Version < 4 || txns.verifyCalls() != 1 || len(resp.Transactions) != 1 ||
		resp.Transactions[0].Topics[0].Partitions[0].ErrorCode != kerr.InvalidTxnState.Code {
		t.Errorf("version %d, %d verifications, response %+v", resp.Version, txns.verifyCalls(), resp)
	}
}
