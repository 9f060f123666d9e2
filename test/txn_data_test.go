package test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// txnProducer drives a transactional producer's data path by hand over a
// raw connection to the partition's leader: Produce with transactional
// batches of a fixed producer id and epoch, and WriteTxnMarkers as the
// coordinator would send them; markers are what end a transaction on a
// partition, so the coordinator's EndTxn is not used.
type txnProducer struct {
	t               *testing.T
	conn            *rawConn
	topic           string
	transactionalID string
	id              int64
	epoch           int16
	sequence        int32
}

// newTxnProducer returns a producer writing to partition 0 of topic
// through addr, its leader. A broker with a transaction coordinator
// (AddPartitionsToTxn advertised) verifies transactional produce against
// it (KIP-890), so the producer then registers as the clients do:
// InitProducerId with its transactional id and AddPartitionsToTxn, with
// a transaction timeout far beyond the test, so that the coordinator never
// ends the transaction itself. Otherwise it takes an idempotent producer
// id (InitProducerId without a transactional id).
func newTxnProducer(t *testing.T, addr, topic string) *txnProducer {
	t.Helper()
	p := &txnProducer{t: t, conn: dialRaw(t, addr), topic: topic, transactionalID: "txn-data-" + topic}
	if _, coordinated := apiVersions(t, addr)[24]; coordinated {
		p.register(addr)
		return p
	}
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.TransactionTimeoutMillis = -1
	resp := p.conn.mustRoundTrip(req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	p.id, p.epoch = resp.ProducerID, resp.ProducerEpoch
	return p
}

// register starts p's transaction on partition 0 with the transaction
// coordinator, found through addr, retrying while the coordinator is not
// ready (retriable errors).
func (p *txnProducer) register(addr string) {
	t := p.t
	t.Helper()
	var coordinator *rawConn
	eventually(t, "the transaction coordinator of "+p.transactionalID, func() bool {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = 3
		req.CoordinatorKey, req.CoordinatorType = p.transactionalID, 1
		resp, err := dialRaw(t, addr).roundTrip(req)
		if err != nil {
			return false
		}
		fc := resp.(*kmsg.FindCoordinatorResponse)
		if fc.ErrorCode != 0 {
			return false
		}
		coordinator = dialRaw(t, net.JoinHostPort(fc.Host, strconv.Itoa(int(fc.Port))))
		return true
	})
	eventually(t, "InitProducerId for "+p.transactionalID, func() bool {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		req.TransactionalID = &p.transactionalID
		req.TransactionTimeoutMillis = 600_000
		resp, err := coordinator.roundTrip(req)
		if err != nil {
			t.Fatalf("InitProducerId: %v", err)
		}
		ip := resp.(*kmsg.InitProducerIDResponse)
		if err := kerr.ErrorForCode(ip.ErrorCode); err != nil {
			if !kerr.IsRetriable(err) && err != kerr.ConcurrentTransactions {
				t.Fatalf("InitProducerId: %v", err)
			}
			return false
		}
		p.id, p.epoch = ip.ProducerID, ip.ProducerEpoch
		return true
	})
	eventually(t, "AddPartitionsToTxn for "+p.transactionalID, func() bool {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = 3
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = p.transactionalID, p.id, p.epoch
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = p.topic, []int32{0}
		req.Topics = append(req.Topics, rt)
		resp, err := coordinator.roundTrip(req)
		if err != nil {
			t.Fatalf("AddPartitionsToTxn: %v", err)
		}
		code := resp.(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode
		if err := kerr.ErrorForCode(code); err != nil {
			if !kerr.IsRetriable(err) && err != kerr.ConcurrentTransactions {
				t.Fatalf("AddPartitionsToTxn: %v", err)
			}
			return false
		}
		return true
	})
}

// produce appends one transactional batch of values and returns its base
// offset.
func (p *txnProducer) produce(values ...string) int64 {
	p.t.Helper()
	b := record.Builder{Producer: &record.Producer{ID: p.id, Epoch: p.epoch, BaseSequence: p.sequence}}
	for _, v := range values {
		b.Add(time.Now().UnixMilli(), nil, []byte(v))
	}
	batch, err := b.AppendTo(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	// Attribute bit 4: transactional (CRC-32C covers the attributes).
	binary.BigEndian.PutUint16(batch[21:], binary.BigEndian.Uint16(batch[21:])|0x10)
	log.SetCRC(batch)
	p.sequence += int32(len(values))
	offset, code := produceRaw(p.t, p.conn, p.topic, batch, p.transactionalID)
	if code != 0 {
		p.t.Fatalf("transactional produce: %v", kerr.ErrorForCode(code))
	}
	return offset
}

// produceRaw sends batch to partition 0 of topic with Produce v9 (with
// transactionalID when not empty) and returns the base offset and code.
func produceRaw(t *testing.T, conn *rawConn, topic string, batch []byte, transactionalID string) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 30000
	if transactionalID != "" {
		req.TransactionID = &transactionalID
	}
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := conn.mustRoundTrip(req).(*kmsg.ProduceResponse)
	sp := resp.Topics[0].Partitions[0]
	return sp.BaseOffset, sp.ErrorCode
}

// end writes the producer's marker (COMMIT or ABORT) with
// WriteTxnMarkers v1 and returns the partition's error code.
func (p *txnProducer) end(commit bool, coordinatorEpoch int32) int16 {
	p.t.Helper()
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = p.id, p.epoch, commit, coordinatorEpoch
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = p.topic, []int32{0}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	resp := p.conn.mustRoundTrip(req).(*kmsg.WriteTxnMarkersResponse)
	if len(resp.Markers) != 1 || len(resp.Markers[0].Topics) != 1 || len(resp.Markers[0].Topics[0].Partitions) != 1 {
		p.t.Fatalf("WriteTxnMarkers response %+v", resp)
	}
	return resp.Markers[0].Topics[0].Partitions[0].ErrorCode
}

// listLatest returns partition 0's latest offset under isolation (0
// read_uncommitted, 1 read_committed), with ListOffsets v5.
func listLatest(t *testing.T, conn *rawConn, topic string, isolation int8) int64 {
	t.Helper()
	offset, err := listLatestErr(conn, topic, isolation)
	if err != nil {
		t.Fatalf("ListOffsets isolation %d: %v", isolation, err)
	}
	return offset
}

// listLatestCode is listLatest that answers -1 on any error, for polls.
func listLatestCode(conn *rawConn, topic string, isolation int8) int64 {
	offset, err := listLatestErr(conn, topic, isolation)
	if err != nil {
		return -1
	}
	return offset
}

// listLatestErr is listLatest returning the error.
func listLatestErr(conn *rawConn, topic string, isolation int8) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 5
	req.ReplicaID = -1
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := conn.roundTrip(req)
	if err != nil {
		return -1, err
	}
	sp := kresp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	if sp.ErrorCode != 0 {
		return -1, kerr.ErrorForCode(sp.ErrorCode)
	}
	return sp.Offset, nil
}

// kadmTopic is the kadm.TopicsSet of topic's partition 0.
func kadmTopic(topic string) kadm.TopicsSet { return kadm.TopicsSet{topic: {0: {}}} }

// contextTimeout is context.WithTimeout of the background context.
func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// readCommittedValues consumes topic's partition 0 with read_committed
// from the start until last is seen, and returns every value read.
func readCommittedValues(t *testing.T, addr, topic, last string) []string {
	t.Helper()
	cl := newClient(t, addr, kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var values []string
	for !slices.Contains(values, last) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read_committed: %q so far, waiting for %q: %v", values, last, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("read_committed fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	return values
}

// TestTransactionalDataPath produces transactional batches and writes
// markers by hand against a real sluice process: a read_committed consumer
// (kgo) sees exactly the committed records; ListOffsets read_committed
// stops at the open transaction; DescribeProducers (kadm) shows it; a
// stale marker is fenced; and all of it survives kill -9.
func TestTransactionalDataPath(t *testing.T) {
	const topic = "txn-data"
	proc := startProcess(t, t.TempDir())
	createTopic(t, proc.Addr, topic, 1)
	conn := dialRaw(t, proc.Addr)
	p := newTxnProducer(t, proc.Addr, topic)

	// Transaction 1, aborted, interleaved with a plain record.
	if off := p.produce("aborted-1", "aborted-2"); off != 0 {
		t.Fatalf("first transactional batch at %d", off)
	}
	if _, code := produceRaw(t, conn, topic, makeBatch(time.Now().UnixMilli(), batchRecord{Value: []byte("plain-1")}), ""); code != 0 {
		t.Fatalf("plain produce: %v", kerr.ErrorForCode(code))
	}
	if lso, hwm := listLatest(t, conn, topic, 1), listLatest(t, conn, topic, 0); lso != 0 || hwm != 3 {
		t.Fatalf("open transaction: read_committed latest %d, read_uncommitted %d; want 0 and 3", lso, hwm)
	}
	adm := newAdmin(t, proc.Addr)
	describe := func() (start int64, coordinatorEpoch int32) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		described, err := adm.DescribeProducers(ctx, kadmTopic(topic))
		if err == nil {
			var ap kadm.DescribedProducer
			ap, err = lookupProducer(described, topic, p.id)
			start, coordinatorEpoch = ap.CurrentTxnStartOffset, ap.CoordinatorEpoch
		}
		if err != nil {
			t.Fatalf("DescribeProducers: %v", err)
		}
		return start, coordinatorEpoch
	}
	if start, _ := describe(); start != 0 {
		t.Fatalf("DescribeProducers: transaction start %d, want 0", start)
	}
	if code := p.end(false, 1); code != 0 {
		t.Fatalf("abort marker: %v", kerr.ErrorForCode(code))
	}
	// A marker of an older coordinator is fenced.
	if code := p.end(true, 0); code != kerr.TransactionCoordinatorFenced.Code {
		t.Fatalf("stale coordinator's marker: %v", kerr.ErrorForCode(code))
	}

	// Transaction 2, committed.
	if off := p.produce("committed-1"); off != 4 {
		t.Fatalf("second transactional batch at %d, want 4", off)
	}
	if code := p.end(true, 1); code != 0 {
		t.Fatalf("commit marker: %v", kerr.ErrorForCode(code))
	}
	want := []string{"plain-1", "committed-1"}
	if got := readCommittedValues(t, proc.Addr, topic, "committed-1"); !slices.Equal(got, want) {
		t.Fatalf("read_committed values %q, want %q", got, want)
	}
	if lso := listLatest(t, conn, topic, 1); lso != 6 {
		t.Fatalf("read_committed latest %d after the commit, want 6", lso)
	}
	if start, epoch := describe(); start != -1 || epoch != 1 {
		t.Fatalf("DescribeProducers after the commit: start %d, coordinator epoch %d", start, epoch)
	}

	// Transaction 3 is open when the process is killed.
	if off := p.produce("after-kill-1"); off != 6 {
		t.Fatalf("third transactional batch at %d, want 6", off)
	}
	proc.Kill()
	proc.Restart()
	conn = dialRaw(t, proc.Addr)
	p.conn = dialRaw(t, proc.Addr)
	adm = newAdmin(t, proc.Addr)
	eventually(t, "the restarted partition to serve", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		offsets, err := adm.ListEndOffsets(ctx, topic)
		o, ok := offsets.Lookup(topic, 0)
		return err == nil && ok && o.Err == nil
	})
	if lso, hwm := listLatest(t, conn, topic, 1), listLatest(t, conn, topic, 0); lso != 6 || hwm != 7 {
		t.Fatalf("after kill -9: read_committed latest %d, read_uncommitted %d; want 6 and 7", lso, hwm)
	}
	if start, _ := describe(); start != 6 {
		t.Fatalf("DescribeProducers after kill -9: transaction start %d, want 6", start)
	}
	if code := p.end(true, 1); code != 0 {
		t.Fatalf("commit after restart: %v", kerr.ErrorForCode(code))
	}
	want = append(want, "after-kill-1")
	if got := readCommittedValues(t, proc.Addr, topic, "after-kill-1"); !slices.Equal(got, want) {
		t.Fatalf("read_committed values after kill -9 %q, want %q", got, want)
	}
	// read_uncommitted sees the aborted records too.
	all := consumeN(t, newClient(t, proc.Addr, consumeFromStart(topic)...), 5)
	var values []string
	for _, r := range all {
		values = append(values, string(r.Value))
	}
	if wantAll := []string{"aborted-1", "aborted-2", "plain-1", "committed-1", "after-kill-1"}; !slices.Equal(values, wantAll) {
		t.Fatalf("read_uncommitted values %q, want %q", values, wantAll)
	}
}

// lookupProducer finds producer id on topic's partition 0.
func lookupProducer(described kadm.DescribedProducersTopics, topic string, id int64) (kadm.DescribedProducer, error) {
	dp, ok := described[topic].Partitions[0]
	switch {
	case !ok:
		return kadm.DescribedProducer{}, fmt.Errorf("%s-0 not described", topic)
	case dp.Err != nil:
		return kadm.DescribedProducer{}, dp.Err
	}
	ap, ok := dp.ActiveProducers[id]
	if !ok {
		return kadm.DescribedProducer{}, fmt.Errorf("producer %d not described on %s-0: %+v", id, topic, dp.ActiveProducers)
	}
	return ap, nil
}
