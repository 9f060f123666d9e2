package wire

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/share"
	"github.com/sluice-io/sluice/consumergroup/share/sharetest"
	"github.com/sluice-io/sluice/consumergroup/sharestate"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/replication/configs"
)

// shareConfigs serves one config to every share group.
type shareConfigs struct{ cfg configs.ShareGroup }

func (s shareConfigs) ShareGroupConfig(string) configs.ShareGroup { return s.cfg }

// TestShareFetchAcknowledge drives two share consumers by hand through
// ShareFetch and ShareAcknowledge on a real single-node cluster: exclusive
// acquisition, a long poll woken by lock expiry and by an append,
// acknowledgements piggybacked and standalone, session epochs, and a
// session close releasing its records.
func TestShareFetchAcknowledge(t *testing.T) {
	persister := sharetest.NewPersister()
	cfg := configs.DefaultShareGroup()
	cfg.AutoOffsetReset = "earliest"
	cfg.RecordLockDuration = 300 * time.Millisecond
	ts := startTestServer(t, Options{})
	shares := share.NewManager(share.DefaultConfig(), ts.cluster.NodeID(), persister, shareConfigs{cfg}, share.Options{})
	t.Cleanup(shares.Close)
	ts.Server.groups, ts.Server.shares = &fakeGroups{}, shares
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic, err := ts.cluster.CreateTopic(ctx, replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := topic.ID()
	appendOne := func(value string) {
		t.Helper()
		p, err := ts.cluster.Partition("t", 0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Append(ctx, oneRecordBatch([]byte(value)))
		if err == nil {
			err = res.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"a", "b", "c"} {
		appendOne(v)
	}
	group := "g"
	fetchReq := func(member string, epoch int32, acks ...kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch) *kmsg.ShareFetchRequest {
		req := kmsg.NewPtrShareFetchRequest()
		req.SetVersion(2)
		req.GroupID, req.MemberID = &group, &member
		req.ShareSessionEpoch, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.MaxRecords = epoch, 5000, 1, 1<<20, 100
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = id
		rp := kmsg.NewShareFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rp.AcknowledgementBatches = acks
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	acquired := func(resp *kmsg.ShareFetchResponse) (ranges []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord, ackCode int16) {
		t.Helper()
		if resp.ErrorCode != 0 {
			t.Fatalf("share fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("share fetch partition: %v", kerr.ErrorForCode(rp.ErrorCode))
				}
				if len(rp.AcquiredRecords) > 0 && len(rp.Records) == 0 {
					t.Fatal("acquired records without batches")
				}
				ranges = append(ranges, rp.AcquiredRecords...)
				ackCode = rp.AcknowledgeErrorCode
			}
		}
		return ranges, ackCode
	}
	want := func(got []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord, first, last int64, deliveries int16) {
		t.Helper()
		if len(got) != 1 || got[0].FirstOffset != first || got[0].LastOffset != last || got[0].DeliveryCount != deliveries {
			t.Fatalf("acquired %+v, want %d-%d delivered %d times", got, first, last, deliveries)
		}
	}
	m1, m2 := dial(t, ts.addr), dial(t, ts.addr)

	resp := m1.roundTrip(fetchReq("m1", 0)).(*kmsg.ShareFetchResponse)
	if resp.AcquisitionLockTimeoutMillis != 300 {
		t.Fatalf("lock timeout %d ms, want 300", resp.AcquisitionLockTimeoutMillis)
	}
	r, _ := acquired(resp)
	want(r, 0, 2, 1)

	// m2 finds everything locked and waits: m1's locks expire.
	began := time.Now()
	r, _ = acquired(m2.roundTrip(fetchReq("m2", 0)).(*kmsg.ShareFetchResponse))
	want(r, 0, 2, 2)
	if waited := time.Since(began); waited > 4*time.Second {
		t.Fatalf("long poll took %s: not woken by the lock expiry", waited)
	}

	// m2 accepts two and rejects one, standalone.
	ack := kmsg.NewPtrShareAcknowledgeRequest()
	ack.SetVersion(2)
	m2ID := "m2"
	ack.GroupID, ack.MemberID, ack.ShareSessionEpoch = &group, &m2ID, 1
	at := kmsg.NewShareAcknowledgeRequestTopic()
	at.TopicID = id
	ap := kmsg.NewShareAcknowledgeRequestTopicPartition()
	ap.AcknowledgementBatches = []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{{FirstOffset: 0, LastOffset: 2, AcknowledgeTypes: []int8{1, 1, 3}}}
	at.Partitions = append(at.Partitions, ap)
	ack.Topics = append(ack.Topics, at)
	ackResp := m2.roundTrip(ack).(*kmsg.ShareAcknowledgeResponse)
	if ackResp.ErrorCode != 0 || len(ackResp.Topics) != 1 || ackResp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("acknowledge: %+v", ackResp)
	}
	key := sharestate.Key{Group: group, TopicID: id, Partition: 0}
	if st := persister.State(key); st.StartOffset != 3 {
		t.Fatalf("stored start offset %d, want 3", st.StartOffset)
	}

	// m1's late piggybacked accept is refused; its fetch waits for data.
	late := fetchReq("m1", 1, kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 0, AcknowledgeTypes: []int8{1}})
	late.MaxWaitMillis = 100
	r, code := acquired(m1.roundTrip(late).(*kmsg.ShareFetchResponse))
	if code != kerr.InvalidRecordState.Code || len(r) != 0 {
		t.Fatalf("late accept: code %d, acquired %+v", code, r)
	}
	if resp := m1.roundTrip(fetchReq("m1", 7)).(*kmsg.ShareFetchResponse); resp.ErrorCode != kerr.InvalidShareSessionEpoch.Code {
		t.Fatalf("wrong epoch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}

	// An append wakes m2's long poll.
	m2.send(fetchReq("m2", 2), 9)
	appendOne("d")
	r, _ = acquired(m2.receive(fetchReq("m2", 2), 9, 2).(*kmsg.ShareFetchResponse))
	want(r, 3, 3, 1)

	// Closing m2's session releases offset 3 to m1.
	closeReq := fetchReq("m2", -1)
	closeReq.Topics = nil
	if resp := m2.roundTrip(closeReq).(*kmsg.ShareFetchResponse); resp.ErrorCode != 0 {
		t.Fatalf("close: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	r, _ = acquired(m1.roundTrip(fetchReq("m1", 2)).(*kmsg.ShareFetchResponse))
	want(r, 3, 3, 2)
	if n := shares.Sessions().Len(); n != 1 {
		t.Fatalf("%d sessions open, want 1 (m1)", n)
	}
}

// TestShareSessionReleasedOnConnectionClose checks that a share consumer's
// connection closing releases the records it holds at once, long before
// their locks would expire.
func TestShareSessionReleasedOnConnectionClose(t *testing.T) {
	cfg := configs.DefaultShareGroup()
	cfg.AutoOffsetReset = "earliest"
	cfg.RecordLockDuration = time.Hour
	ts := startTestServer(t, Options{})
	shares := share.NewManager(share.DefaultConfig(), ts.cluster.NodeID(), sharetest.NewPersister(), shareConfigs{cfg}, share.Options{})
	t.Cleanup(shares.Close)
	ts.Server.groups, ts.Server.shares = &fakeGroups{}, shares
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic, err := ts.cluster.CreateTopic(ctx, replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ts.cluster.Partition("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Append(ctx, oneRecordBatch([]byte("a")))
	if err == nil {
		err = res.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	group := "g"
	fetch := func(c *rawClient, member string) []kmsg.ShareFetchResponseTopicPartitionAcquiredRecord {
		t.Helper()
		req := kmsg.NewPtrShareFetchRequest()
		req.SetVersion(2)
		req.GroupID, req.MemberID = &group, &member
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 5000, 1, 1<<20
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = topic.ID()
		rt.Partitions = append(rt.Partitions, kmsg.NewShareFetchRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		resp := c.roundTrip(req).(*kmsg.ShareFetchResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 {
			t.Fatalf("share fetch: %+v", resp)
		}
		return resp.Topics[0].Partitions[0].AcquiredRecords
	}
	m1 := dial(t, ts.addr)
	if got := fetch(m1, "m1"); len(got) != 1 || got[0].DeliveryCount != 1 {
		t.Fatalf("m1 acquired %+v", got)
	}
	m1.nc.Close()
	began := time.Now()
	if got := fetch(dial(t, ts.addr), "m2"); len(got) != 1 || got[0].FirstOffset != 0 || got[0].DeliveryCount != 2 {
		t.Fatalf("m2 acquired %+v, want offset 0 delivered twice", got)
	}
	if waited := time.Since(began); waited > 4*time.Second {
		t.Fatalf("released after %s", waited)
	}
}

// shareServer is a single-node server with share groups over an in-memory
// persister, and one topic "t" of one partition.
type shareServer struct {
	*testServer
	topicID [16]byte
}

func startShareServer(t *testing.T, cfg configs.ShareGroup) *shareServer {
	t.Helper()
	return startShareServerWith(t, cfg, share.DefaultConfig())
}

// startShareServerWith is startShareServer with the share-partitions'
// config shareCfg.
func startShareServerWith(t *testing.T, cfg configs.ShareGroup, shareCfg share.Config) *shareServer {
	t.Helper()
	ts := startTestServer(t, Options{})
	shares := share.NewManager(shareCfg, ts.cluster.NodeID(), sharetest.NewPersister(), shareConfigs{cfg}, share.Options{})
	t.Cleanup(shares.Close)
	ts.Server.groups, ts.Server.shares = &fakeGroups{}, shares
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic, err := ts.cluster.CreateTopic(ctx, replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &shareServer{testServer: ts, topicID: topic.ID()}
}

// appendBatch appends one batch of values to t-0 and waits for it.
func (ss *shareServer) appendBatch(t *testing.T, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b record.Builder
	for _, v := range values {
		b.Add(0, nil, []byte(v))
	}
	batch, err := b.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ss.cluster.Partition("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Append(ctx, batch)
	if err == nil {
		err = res.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestShareRenewAndRecordLimit checks renew acknowledgements (KIP-1222:
// only with IsRenewAck, which fetches nothing) and the record-limit
// acquire mode (KIP-1206), on the wire.
func TestShareRenewAndRecordLimit(t *testing.T) {
	cfg := configs.DefaultShareGroup()
	cfg.AutoOffsetReset = "earliest"
	ss := startShareServer(t, cfg)
	ss.appendBatch(t, "a", "b", "c", "d")
	group, member := "g", "m"
	c := dial(t, ss.addr)
	fetch := func(epoch int32, mode int8, renew bool, acks ...kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch) *kmsg.ShareFetchResponse {
		req := kmsg.NewPtrShareFetchRequest()
		req.SetVersion(2)
		req.GroupID, req.MemberID, req.ShareSessionEpoch = &group, &member, epoch
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.MaxRecords = 1000, 1, 1<<20, 2
		if renew {
			// A renew request carries no fetch parameters.
			req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.MaxRecords = 0, 0, 0, 0
		}
		req.ShareAcquireMode, req.IsRenewAck = mode, renew
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = ss.topicID
		rp := kmsg.NewShareFetchRequestTopicPartition()
		rp.AcknowledgementBatches = acks
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.roundTrip(req).(*kmsg.ShareFetchResponse)
	}
	resp := fetch(0, 1, false)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 {
		t.Fatalf("record-limit fetch: %+v", resp)
	}
	if got := resp.Topics[0].Partitions[0].AcquiredRecords; len(got) != 1 || got[0].FirstOffset != 0 || got[0].LastOffset != 1 {
		t.Fatalf("record-limit mode acquired %+v, want 0-1", got)
	}
	renew := kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch{FirstOffset: 0, LastOffset: 1, AcknowledgeTypes: []int8{4}}
	// A renew outside a renew request is a bad acknowledgement.
	if resp := fetch(1, 1, false, renew); resp.Topics[0].Partitions[0].AcknowledgeErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("renew without IsRenewAck: %+v", resp.Topics[0].Partitions[0])
	}
	resp = fetch(2, 0, true, renew)
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].AcknowledgeErrorCode != 0 || len(resp.Topics[0].Partitions[0].AcquiredRecords) != 0 {
		t.Fatalf("renew request: %+v", resp)
	}
	// Renew through ShareAcknowledge, as franz-go does.
	renewAck := kmsg.NewPtrShareAcknowledgeRequest()
	renewAck.SetVersion(2)
	renewAck.GroupID, renewAck.MemberID, renewAck.ShareSessionEpoch, renewAck.IsRenewAck = &group, &member, 3, true
	at := kmsg.NewShareAcknowledgeRequestTopic()
	at.TopicID = ss.topicID
	ap := kmsg.NewShareAcknowledgeRequestTopicPartition()
	ap.AcknowledgementBatches = []kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch{{FirstOffset: 0, LastOffset: 1, AcknowledgeTypes: []int8{4}}}
	at.Partitions = append(at.Partitions, ap)
	renewAck.Topics = append(renewAck.Topics, at)
	if resp := c.roundTrip(renewAck).(*kmsg.ShareAcknowledgeResponse); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("ShareAcknowledge renew: %+v", resp)
	}
	// A renew request with fetch parameters is malformed.
	req := kmsg.NewPtrShareFetchRequest()
	req.SetVersion(2)
	req.GroupID, req.MemberID, req.ShareSessionEpoch, req.IsRenewAck, req.MaxWaitMillis = &group, &member, 4, true, 100
	if resp := c.roundTrip(req).(*kmsg.ShareFetchResponse); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("renew request with MaxWait: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}
