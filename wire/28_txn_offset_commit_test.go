package wire

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
)

// txnOffsetsServer is a test server with a real group coordinator (one
// __consumer_offsets partition) and txns as transaction coordinator, with
// topic "t"; it returns the server and the __consumer_offsets partition.
func txnOffsetsServer(t *testing.T, txns *fakeTxns) (*testServer, *replication.Partition) {
	t.Helper()
	ts := startTestServerOn(t, func(cl *replication.Cluster) (Options, func(context.Context) error) {
		cfg := consumergroup.DefaultConfig()
		cfg.OffsetsTopicPartitions = 1
		groups, err := consumergroup.New(cl, cfg, consumergroup.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return Options{Groups: groups, Transactions: txns}, groups.Close
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ts.cluster.CreateTopic(ctx, replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	var offsets *replication.Partition
	waitFor(t, func() bool {
		p, err := ts.cluster.Partition(consumergroup.OffsetsTopic, 0)
		if err != nil {
			return false
		}
		offsets = p
		node, _ := p.Leader()
		return node == ts.cluster.NodeID()
	})
	return ts, offsets
}

// txnOffsetCommit sends a TxnOffsetCommit of offset for partition 0 of
// "t" in group "g" by producer 7 epoch 0 at version, and returns its code.
func txnOffsetCommit(ts *testServer, t *testing.T, version int16, offset int64) int16 {
	t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.SetVersion(version)
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = "tx", "g", 7, 0, -1
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	return dial(t, ts.addr).roundTrip(req).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

// stableOffset fetches group "g"'s offset of partition 0 of "t" with
// RequireStable: the partition's code and offset.
func stableOffset(ts *testServer, t *testing.T) (int16, int64) {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.SetVersion(7)
	req.Group, req.RequireStable = "g", true
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	resp := dial(t, ts.addr).roundTrip(req).(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode, -1
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.Offset
}

// TestLateTxnOffsetCommitRefused checks TxnOffsetCommit's verification
// (KIP-890) with a real group coordinator: v3/v4 (transaction version 1)
// ask the transaction coordinator whether the group's partition is in
// the transaction, once per transaction; a commit sent after its
// transaction ended, or verified before its marker and appended after
// it, is refused with INVALID_TXN_STATE, and the group's offsets are not
// left pending: the committed offset stays, RequireStable sees no
// unstable offset and the partition's LSO reaches its log end.
func TestLateTxnOffsetCommitRefused(t *testing.T) {
	txns := &fakeTxns{}
	ts, offsets := txnOffsetsServer(t, txns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var code int16
	waitFor(t, func() bool {
		code = txnOffsetCommit(ts, t, 3, 10)
		return code != kerr.CoordinatorLoadInProgress.Code && code != kerr.NotCoordinator.Code
	})
	if code != 0 || txns.verifyCalls() != 1 {
		t.Fatalf("TxnOffsetCommit v3 in the transaction: %v, %d verifications, want none and 1", kerr.ErrorForCode(code), txns.verifyCalls())
	}
	if code := txnOffsetCommit(ts, t, 4, 11); code != 0 || txns.verifyCalls() != 1 {
		t.Fatalf("TxnOffsetCommit v4 in the transaction: %v, %d verifications, want none and 1 (under way)", kerr.ErrorForCode(code), txns.verifyCalls())
	}
	if code, _ := stableOffset(ts, t); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("RequireStable fetch in the transaction: %v, want UNSTABLE_OFFSET_COMMIT", kerr.ErrorForCode(code))
	}
	// EndTxn: the transaction coordinator writes the COMMIT marker, and
	// from then on answers that the partition is not in a transaction.
	if err := ts.writeTxnMarker(ctx, consumergroup.OffsetsTopic, 0, partition.TxnMarker{ProducerID: 7, ProducerEpoch: 0, Commit: true}); err != nil {
		t.Fatal(err)
	}
	txns.set(kerr.InvalidTxnState.Code)
	if code, off := stableOffset(ts, t); code != 0 || off != 11 {
		t.Fatalf("after the commit: %v offset %d, want 11", kerr.ErrorForCode(code), off)
	}
	settledOffsets := func(when string) {
		t.Helper()
		if code, off := stableOffset(ts, t); code != 0 || off != 11 {
			t.Fatalf("%s: RequireStable fetch %v offset %d, want 11", when, kerr.ErrorForCode(code), off)
		}
		if o := offsets.Offsets(); o.LastStable != o.LogEnd {
			t.Fatalf("%s: __consumer_offsets offsets %+v: a transaction was left open", when, o)
		}
	}

	for _, v := range []int16{3, 4} {
		if code := txnOffsetCommit(ts, t, v, 20); code != kerr.InvalidTxnState.Code {
			t.Fatalf("TxnOffsetCommit v%d after EndTxn: %v, want INVALID_TXN_STATE", v, kerr.ErrorForCode(code))
		}
		settledOffsets("a late commit")
	}
	txns.set(kerr.ProducerFenced.Code)
	if code := txnOffsetCommit(ts, t, 3, 20); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("TxnOffsetCommit of a fenced producer: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}

	// The race: the coordinator says yes (the transaction is still
	// open), then the transaction's marker lands before the append.
	txns.set(0)
	txns.mu.Lock()
	txns.asked = func() {
		if err := ts.writeTxnMarker(ctx, consumergroup.OffsetsTopic, 0, partition.TxnMarker{ProducerID: 7, ProducerEpoch: 0, Commit: false}); err != nil {
			t.Error(err)
		}
	}
	txns.mu.Unlock()
	if code := txnOffsetCommit(ts, t, 3, 30); code != kerr.InvalidTxnState.Code {
		t.Fatalf("TxnOffsetCommit verified before the marker, appended after: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	settledOffsets("a commit overtaken by its marker")
	txns.mu.Lock()
	txns.asked = nil
	txns.mu.Unlock()

	// v5 (transaction version 2) has the coordinator add the partition
	// instead of verifying it.
	verifies := txns.verifyCalls()
	if code := txnOffsetCommit(ts, t, 5, 40); code != 0 {
		t.Fatalf("TxnOffsetCommit v5: %v", kerr.ErrorForCode(code))
	}
	txns.mu.Lock()
	adds := txns.adds
	txns.mu.Unlock()
	if adds != 1 || txns.verifyCalls() != verifies {
		t.Errorf("TxnOffsetCommit v5: %d adds and %d verifications, want 1 and 0", adds, txns.verifyCalls()-verifies)
	}
}
