package test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup"
)

// lateTxn drives one transactional id's offset commits by hand, with
// transaction version 1 requests as sarama, KafkaJS and librdkafka send
// them (AddOffsetsToTxn v3, TxnOffsetCommit v3/v4, EndTxn v3), over a raw
// connection to a single-node server (coordinator of both the id and the
// group).
type lateTxn struct {
	t        *testing.T
	conn     *rawConn
	id       string
	group    string
	topic    string
	producer int64
	epoch    int16
}

// call sends req until its code, read by code, is not retriable (the
// coordinators load at start; CONCURRENT_TRANSACTIONS while a previous
// transaction completes), and returns that code.
func (x *lateTxn) call(what string, req kmsg.Request, code func(kmsg.Response) int16) int16 {
	x.t.Helper()
	var c int16
	eventually(x.t, what, func() bool {
		c = code(x.conn.mustRoundTrip(req))
		err := kerr.ErrorForCode(c)
		return err == nil || !kerr.IsRetriable(err) && err != kerr.ConcurrentTransactions
	})
	return c
}

// begin takes the id's producer id and epoch (InitProducerId).
func (x *lateTxn) begin() {
	x.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 3
	req.TransactionalID, req.TransactionTimeoutMillis = &x.id, 600_000
	var resp *kmsg.InitProducerIDResponse
	code := x.call("InitProducerId", req, func(r kmsg.Response) int16 {
		resp = r.(*kmsg.InitProducerIDResponse)
		return resp.ErrorCode
	})
	if code != 0 {
		x.t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(code))
	}
	x.producer, x.epoch = resp.ProducerID, resp.ProducerEpoch
}

// addOffsets adds the group to the ongoing transaction (AddOffsetsToTxn).
func (x *lateTxn) addOffsets() {
	x.t.Helper()
	req := kmsg.NewPtrAddOffsetsToTxnRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = x.id, x.producer, x.epoch, x.group
	if code := x.call("AddOffsetsToTxn", req, func(r kmsg.Response) int16 { return r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode }); code != 0 {
		x.t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(code))
	}
}

// commit sends TxnOffsetCommit at version for partition 0 of the topic
// and returns its code once not retriable.
func (x *lateTxn) commit(version int16, offset int64) int16 {
	x.t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = version
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = x.id, x.group, x.producer, x.epoch, -1
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: x.topic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	return x.call("TxnOffsetCommit", req, func(r kmsg.Response) int16 {
		return r.(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	})
}

// end commits or aborts the transaction (EndTxn v3).
func (x *lateTxn) end(commit bool) {
	x.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = 3
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = x.id, x.producer, x.epoch, commit
	if code := x.call("EndTxn", req, func(r kmsg.Response) int16 { return r.(*kmsg.EndTxnResponse).ErrorCode }); code != 0 {
		x.t.Fatalf("EndTxn: %v", kerr.ErrorForCode(code))
	}
}

// stable fetches the group's offset of partition 0 with RequireStable:
// the partition's code and offset.
func (x *lateTxn) stable() (int16, int64) {
	x.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group, req.RequireStable = x.group, true
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: x.topic, Partitions: []int32{0}}}
	resp := x.conn.mustRoundTrip(req).(*kmsg.OffsetFetchResponse)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode, -1
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.Offset
}

// waitStable waits until the group's offset is stable at want.
func (x *lateTxn) waitStable(want int64) {
	x.t.Helper()
	eventually(x.t, "the committed offset stable", func() bool {
		code, offset := x.stable()
		return code == 0 && offset == want
	})
}

// groupPartitionOffsets returns the latest offset of the group's
// __consumer_offsets partition read uncommitted and read committed (the
// high watermark and the last stable offset).
func (x *lateTxn) groupPartitionOffsets() (hwm, lso int64) {
	x.t.Helper()
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 9
	topic := consumergroup.OffsetsTopic
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	mresp := x.conn.mustRoundTrip(meta).(*kmsg.MetadataResponse)
	if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0 || len(mresp.Topics[0].Partitions) == 0 {
		x.t.Fatalf("metadata of %s: %+v", topic, mresp.Topics)
	}
	index := consumergroup.PartitionFor(x.group, int32(len(mresp.Topics[0].Partitions)))
	latest := func(isolation int8) int64 {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 5
		req.ReplicaID, req.IsolationLevel = -1, isolation
		req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: index, Timestamp: -1, CurrentLeaderEpoch: -1}}}}
		sp := x.conn.mustRoundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if sp.ErrorCode != 0 {
			x.t.Fatalf("ListOffsets of %s-%d isolation %d: %v", topic, index, isolation, kerr.ErrorForCode(sp.ErrorCode))
		}
		return sp.Offset
	}
	return latest(0), latest(1)
}

// TestLateTxnOffsetCommitRefused sends, at transaction version 1, a
// TxnOffsetCommit after its transaction's EndTxn completed: the broker
// verifies with the transaction coordinator that the group's partition
// is in an ongoing transaction (KIP-890) and refuses it with
// INVALID_TXN_STATE, so it begins no transaction in __consumer_offsets
// that no marker would end: the group's offset stays the committed one
// and stable (no UNSTABLE_OFFSET_COMMIT), and the partition's last stable
// offset reaches its high watermark. The id's next transaction commits
// offsets as before.
func TestLateTxnOffsetCommitRefused(t *testing.T) {
	p := startProcess(t, t.TempDir())
	const topic = "late-offsets-in"
	createTopic(t, p.Addr, topic, 1)
	x := &lateTxn{t: t, conn: dialRaw(t, p.Addr), id: "late-offsets-txn", group: "late-offsets-group", topic: topic}
	x.begin()

	x.addOffsets()
	if code := x.commit(3, 5); code != 0 {
		t.Fatalf("TxnOffsetCommit in the transaction: %v", kerr.ErrorForCode(code))
	}
	if code, _ := x.stable(); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("RequireStable fetch in the transaction: %v, want UNSTABLE_OFFSET_COMMIT", kerr.ErrorForCode(code))
	}
	x.end(true)
	x.waitStable(5)

	for _, version := range []int16{3, 4} {
		if code := x.commit(version, 9); code != kerr.InvalidTxnState.Code {
			t.Fatalf("TxnOffsetCommit v%d after EndTxn: %v, want INVALID_TXN_STATE", version, kerr.ErrorForCode(code))
		}
		if code, offset := x.stable(); code != 0 || offset != 5 {
			t.Fatalf("after the late v%d commit: RequireStable fetch %v offset %d, want the committed 5", version, kerr.ErrorForCode(code), offset)
		}
		if hwm, lso := x.groupPartitionOffsets(); lso != hwm {
			t.Fatalf("after the late v%d commit: __consumer_offsets LSO %d below its high watermark %d: a transaction was left open", version, lso, hwm)
		}
	}

	// The next transaction of the id works as before.
	x.addOffsets()
	if code := x.commit(4, 12); code != 0 {
		t.Fatalf("TxnOffsetCommit in the next transaction: %v", kerr.ErrorForCode(code))
	}
	x.end(true)
	x.waitStable(12)
}
