package wire

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication"
)

// txnRecordBatch is a transactional batch of one record of producer id,
// epoch 0, at sequence.
func txnRecordBatch(id int64, sequence int32, value string) []byte {
	b := record.Builder{Producer: &record.Producer{ID: id, BaseSequence: sequence}}
	b.Add(time.Now().UnixMilli(), nil, []byte(value))
	raw, err := b.AppendTo(nil)
	if err != nil {
		panic(err)
	}
	binary.BigEndian.PutUint16(raw[21:], binary.BigEndian.Uint16(raw[21:])|0x10)
	log.SetCRC(raw)
	return raw
}

// finishReply returns the response of a handler's reply.
func finishReply(t *testing.T, r reply) kmsg.Response {
	t.Helper()
	if r.resp != nil {
		return r.resp
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.finish(ctx)
}

func writeMarkersRequest(topic string, id int64, epoch int16, commit bool, coordinatorEpoch int32, partitions ...int32) *kmsg.WriteTxnMarkersRequest {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = id, epoch, commit, coordinatorEpoch
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = topic, partitions
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	return req
}

func markerCodes(resp *kmsg.WriteTxnMarkersResponse) []int16 {
	var codes []int16
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				codes = append(codes, p.ErrorCode)
			}
		}
	}
	return codes
}

// TestTxnHandlers: WriteTxnMarkers ends a transaction (and refuses what
// Kafka refuses), DescribeProducers shows it, and a read_committed Fetch
// answers the LSO and the aborted transactions.
func TestTxnHandlers(t *testing.T) {
	ts := startTestServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ts.cluster.CreateTopic(ctx, replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	p, err := ts.cluster.Partition("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range [][]byte{txnRecordBatch(5, 0, "a"), oneRecordBatch([]byte("plain"))} {
		res, err := p.Append(ctx, b)
		if err == nil {
			err = res.Wait(ctx)
		}
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}

	describe := func() kmsg.DescribeProducersResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrDescribeProducersRequest()
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{0, 7}
		req.Topics = append(req.Topics, rt)
		resp := finishReply(t, handleDescribeProducers(ts.Server, ctx, req)).(*kmsg.DescribeProducersResponse)
		parts := resp.Topics[0].Partitions
		if len(parts) != 2 || parts[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("DescribeProducers %+v", resp)
		}
		return parts[0]
	}
	if sp := describe(); sp.ErrorCode != 0 || len(sp.ActiveProducers) != 1 || sp.ActiveProducers[0].ProducerID != 5 || sp.ActiveProducers[0].CurrentTxnStartOffset != 0 {
		t.Fatalf("DescribeProducers during the transaction: %+v", sp)
	}

	fetch := func() kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(11)
		req.IsolationLevel = 1
		req.MaxBytes = 1 << 20
		f := &fetch{s: ts.Server, req: req, room: math.MaxInt}
		f.res.targets = append(f.res.targets, fetchTarget{key: sessionKey{topic: "t", partition: 0}, maxBytes: 1 << 20, currentLeaderEpoch: -1})
		f.resolvePartitions()
		defer f.release()
		resp, _, _ := f.read()
		return resp.Topics[0].Partitions[0]
	}
	if sp := fetch(); sp.LastStableOffset != 0 || sp.HighWatermark != 2 || len(sp.RecordBatches) != 0 {
		t.Fatalf("read_committed fetch during the transaction: LSO %d HWM %d, %d bytes", sp.LastStableOffset, sp.HighWatermark, len(sp.RecordBatches))
	}

	for _, tc := range []struct {
		name string
		req  *kmsg.WriteTxnMarkersRequest
		want []int16
	}{
		{"unknown partition", writeMarkersRequest("t", 5, 0, false, 1, 3), []int16{kerr.UnknownTopicOrPartition.Code}},
		{"unknown topic", writeMarkersRequest("nope", 5, 0, false, 1, 0), []int16{kerr.UnknownTopicOrPartition.Code}},
		{"bad producer", writeMarkersRequest("t", -1, 0, false, 1, 0), []int16{kerr.InvalidRequest.Code}},
		{"abort", writeMarkersRequest("t", 5, 0, false, 1, 0), []int16{0}},
		{"older coordinator", writeMarkersRequest("t", 5, 0, true, 0, 0), []int16{kerr.TransactionCoordinatorFenced.Code}},
		{"bump", writeMarkersRequest("t", 5, 2, false, 1, 0), []int16{0}},
		{"older producer epoch", writeMarkersRequest("t", 5, 1, false, 1, 0), []int16{kerr.InvalidProducerEpoch.Code}},
	} {
		resp := finishReply(t, handleWriteTxnMarkers(ts.Server, ctx, tc.req)).(*kmsg.WriteTxnMarkersResponse)
		if got := markerCodes(resp); len(got) != len(tc.want) || got[0] != tc.want[0] {
			t.Fatalf("%s: codes %v, want %v", tc.name, got, tc.want)
		}
	}
	sp := fetch()
	if sp.LastStableOffset != 4 || sp.HighWatermark != 4 || len(sp.RecordBatches) == 0 {
		t.Fatalf("read_committed fetch after the abort: LSO %d HWM %d, %d bytes", sp.LastStableOffset, sp.HighWatermark, len(sp.RecordBatches))
	}
	if len(sp.AbortedTransactions) != 1 || sp.AbortedTransactions[0].ProducerID != 5 || sp.AbortedTransactions[0].FirstOffset != 0 {
		t.Fatalf("aborted transactions %+v", sp.AbortedTransactions)
	}
	if sp := describe(); sp.ActiveProducers[0].CurrentTxnStartOffset != -1 || sp.ActiveProducers[0].ProducerEpoch != 2 || sp.ActiveProducers[0].CoordinatorEpoch != 1 {
		t.Fatalf("DescribeProducers after the markers: %+v", sp)
	}
}

// TestProduceTransactionalNeedsID: transactional records in a Produce
// without a transactional id are refused, as Kafka refuses them.
func TestProduceTransactionalNeedsID(t *testing.T) {
	ts := startTestServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ts.cluster.CreateTopic(ctx, replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	produce := func(batch []byte, transactionalID *string) int16 {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 9, -1, 10_000, transactionalID
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := finishReply(t, handleProduce(ts.Server, ctx, req)).(*kmsg.ProduceResponse)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := produce(concatBatches(oneRecordBatch([]byte("plain")), txnRecordBatch(3, 0, "txn")), nil); code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional batch without a transactional id: code %d", code)
	}
	if code := produce(oneRecordBatch([]byte("plain")), nil); code != 0 {
		t.Fatalf("plain batch: code %d", code)
	}
}

func concatBatches(batches ...[]byte) []byte {
	var out []byte
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}
