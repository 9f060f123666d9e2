package test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file checks that any node answers the admin requests only the
// metadata leader performs (they are forwarded to it), hands out producer
// ids and auto-creates topics.

// forwardCluster starts three nodes and returns them with the metadata
// leader's index and a follower's.
func forwardCluster(t *testing.T) (procs []*sluiceProcess, leader, follower int) {
	t.Helper()
	procs, _ = startMetadataCluster(t, 3)
	var controller int32
	eventually(t, "every node names the same controller", func() bool {
		controller = -1
		for _, p := range procs {
			m := metadataOf(t, p.Addr)
			if len(m.Brokers) != 3 || m.ControllerID < 1 || controller != -1 && m.ControllerID != controller {
				return false
			}
			controller = m.ControllerID
		}
		return true
	})
	leader = int(controller - 1)
	return procs, leader, (leader + 1) % 3
}

// pinnedClient returns a client seeded with only the node at addr and a
// Requestor that sends every request to that node (id), whatever kgo
// would choose (it sends admin requests to the controller).
func pinnedClient(t *testing.T, addr string, id int) kmsg.Requestor {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl.Broker(id)
}

// topicOn returns topic's id and partition count as the node at addr
// reports them (zero id when it does not know the topic).
func topicOn(t *testing.T, addr, topic string) (id [16]byte, partitions int) {
	t.Helper()
	for _, mt := range metadataOf(t, addr).Topics {
		if mt.Topic != nil && *mt.Topic == topic && mt.ErrorCode == 0 {
			return mt.TopicID, len(mt.Partitions)
		}
	}
	return [16]byte{}, 0
}

// topicConfigOn returns the value of topic's config name as the node at
// addr describes it ("" when it does not).
func topicConfigOn(t *testing.T, addr, topic, name string) string {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.SetVersion(4)
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, []string{name}
	req.Resources = append(req.Resources, rr)
	resp := dialRaw(t, addr).mustRoundTrip(req).(*kmsg.DescribeConfigsResponse)
	for _, r := range resp.Resources {
		for _, c := range r.Configs {
			if r.ErrorCode == 0 && c.Name == name && c.Value != nil {
				return *c.Value
			}
		}
	}
	return ""
}

// TestAdminRequestsThroughFollower sends CreateTopics, CreatePartitions,
// AlterConfigs, IncrementalAlterConfigs (topics and the node's own
// broker configs) and DeleteTopics to a node that
// is not the metadata leader only: each is forwarded to the leader, its
// per-item answers come back (errors too), the follower itself reflects
// the change when it answers, and every node sees it.
func TestAdminRequestsThroughFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _, f := forwardCluster(t)
	follower := pinnedClient(t, procs[f].Addr, f+1)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	// Two topics, one of which exists already after the first request:
	// the leader's per-topic answers come back as they are.
	create := kmsg.NewPtrCreateTopicsRequest()
	create.TimeoutMillis = 10_000
	ta := kmsg.NewCreateTopicsRequestTopic()
	ta.Topic, ta.NumPartitions, ta.ReplicationFactor = "fwd-a", 2, 2
	create.Topics = append(create.Topics, ta)
	resp, err := create.RequestWith(ctx, follower)
	if err != nil {
		t.Fatal(err)
	}
	if st := resp.Topics[0]; st.ErrorCode != 0 || st.TopicID == [16]byte{} || st.NumPartitions != 2 {
		t.Fatalf("CreateTopics fwd-a through a follower: %v (id %x, %d partitions)", kerr.ErrorForCode(st.ErrorCode), st.TopicID, st.NumPartitions)
	}
	idA := resp.Topics[0].TopicID
	if id, n := topicOn(t, procs[f].Addr, "fwd-a"); id != idA || n != 2 {
		t.Fatalf("the follower answered before its own view had fwd-a: id %x, %d partitions", id, n)
	}
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "fwd-b", 1, 1
	create.Topics = append(create.Topics, rt)
	resp, err = create.RequestWith(ctx, follower)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 2 || resp.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code || resp.Topics[1].ErrorCode != 0 {
		t.Fatalf("CreateTopics fwd-a (exists), fwd-b through a follower: %+v", resp.Topics)
	}
	for _, p := range procs {
		eventually(t, "fwd-a and fwd-b reach "+p.Addr, func() bool {
			idOn, n := topicOn(t, p.Addr, "fwd-a")
			_, nb := topicOn(t, p.Addr, "fwd-b")
			return idOn == idA && n == 2 && nb == 1
		})
	}

	grow := kmsg.NewPtrCreatePartitionsRequest()
	grow.TimeoutMillis = 10_000
	gt := kmsg.NewCreatePartitionsRequestTopic()
	gt.Topic, gt.Count = "fwd-a", 4
	grow.Topics = append(grow.Topics, gt)
	gresp, err := grow.RequestWith(ctx, follower)
	if err != nil {
		t.Fatal(err)
	}
	if code := gresp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("CreatePartitions through a follower: %v", kerr.ErrorForCode(code))
	}
	if _, n := topicOn(t, procs[f].Addr, "fwd-a"); n != 4 {
		t.Fatalf("the follower answered CreatePartitions with %d partitions in its view, want 4", n)
	}

	alter := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeTopic, "fwd-a"
	ac := kmsg.NewAlterConfigsRequestResourceConfig()
	ac.Name, ac.Value = "retention.ms", kmsg.StringPtr("123456")
	ar.Configs = append(ar.Configs, ac)
	alter.Resources = append(alter.Resources, ar)
	aresp, err := alter.RequestWith(ctx, follower)
	if err != nil {
		t.Fatal(err)
	}
	if code := aresp.Resources[0].ErrorCode; code != 0 {
		t.Fatalf("AlterConfigs through a follower: %v %v", kerr.ErrorForCode(code), aresp.Resources[0].ErrorMessage)
	}

	incremental := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, c := range []struct{ topic, name, value string }{
		{"fwd-b", "segment.bytes", "2097152"},
		{"fwd-missing", "segment.bytes", "2097152"},
	} {
		ir := kmsg.NewIncrementalAlterConfigsRequestResource()
		ir.ResourceType, ir.ResourceName = kmsg.ConfigResourceTypeTopic, c.topic
		ic := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		ic.Name, ic.Op, ic.Value = c.name, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(c.value)
		ir.Configs = append(ir.Configs, ic)
		incremental.Resources = append(incremental.Resources, ir)
	}
	// The follower's own dynamic broker config too: kadm sends a
	// BROKER resource to that broker.
	br := kmsg.NewIncrementalAlterConfigsRequestResource()
	br.ResourceType, br.ResourceName = kmsg.ConfigResourceTypeBroker, fmt.Sprint(f+1)
	bc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	bc.Name, bc.Op, bc.Value = "log.retention.bytes", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("987654321")
	br.Configs = append(br.Configs, bc)
	incremental.Resources = append(incremental.Resources, br)
	iresp, err := incremental.RequestWith(ctx, follower)
	if err != nil {
		t.Fatal(err)
	}
	if len(iresp.Resources) != 3 || iresp.Resources[0].ErrorCode != 0 || iresp.Resources[1].ErrorCode != kerr.UnknownTopicOrPartition.Code || iresp.Resources[2].ErrorCode != 0 {
		t.Fatalf("IncrementalAlterConfigs fwd-b, fwd-missing, broker %d through a follower: %+v", f+1, iresp.Resources)
	}
	for _, p := range procs {
		eventually(t, "the config changes reach "+p.Addr, func() bool {
			_, n := topicOn(t, p.Addr, "fwd-a")
			return n == 4 && topicConfigOn(t, p.Addr, "fwd-a", "retention.ms") == "123456" &&
				topicConfigOn(t, p.Addr, "fwd-b", "segment.bytes") == "2097152"
		})
	}
	eventually(t, "the follower's broker config changes", func() bool {
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeBroker, fmt.Sprint(f+1), []string{"log.retention.bytes"}
		req.Resources = append(req.Resources, rr)
		resp := dialRaw(t, procs[f].Addr).mustRoundTrip(req).(*kmsg.DescribeConfigsResponse)
		for _, r := range resp.Resources {
			for _, c := range r.Configs {
				if c.Name == "log.retention.bytes" && c.Value != nil && *c.Value == "987654321" {
					return true
				}
			}
		}
		return false
	})

	// An old client: DeleteTopics v1 by name, on a raw connection to the
	// follower; the leader answers at its own version.
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.SetVersion(1)
	del.TimeoutMillis = 10_000
	del.TopicNames = []string{"fwd-a", "fwd-missing"}
	dresp := dialRaw(t, procs[f].Addr).mustRoundTrip(del).(*kmsg.DeleteTopicsResponse)
	if len(dresp.Topics) != 2 || dresp.Topics[0].ErrorCode != 0 || dresp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("DeleteTopics v1 fwd-a, fwd-missing through a follower: %+v", dresp.Topics)
	}
	if id, _ := topicOn(t, procs[f].Addr, "fwd-a"); id != [16]byte{} {
		t.Fatal("the follower answered DeleteTopics while its view still had fwd-a")
	}
	for _, p := range procs {
		eventually(t, "the deletion reaches "+p.Addr, func() bool {
			id, _ := topicOn(t, p.Addr, "fwd-a")
			return id == [16]byte{}
		})
	}

	// Client quotas through a follower: applied by the leader, described
	// by every node (each reads its own view of the metadata).
	app := "fwd-quota"
	aq := kmsg.NewPtrAlterClientQuotasRequest()
	aq.Entries = []kmsg.AlterClientQuotasRequestEntry{{
		Entity: []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id", Name: &app}},
		Ops:    []kmsg.AlterClientQuotasRequestEntryOp{{Key: "producer_byte_rate", Value: 4096}},
	}}
	qresp, err := aq.RequestWith(ctx, follower)
	if err != nil || len(qresp.Entries) != 1 || qresp.Entries[0].ErrorCode != 0 {
		t.Fatalf("AlterClientQuotas through a follower: %v %+v", err, qresp)
	}
	for _, p := range procs {
		eventually(t, "the quota reaches "+p.Addr, func() bool {
			dq := kmsg.NewPtrDescribeClientQuotasRequest()
			dq.Components = []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "client-id", MatchType: 0, Match: &app}}
			dresp, err := dq.RequestWith(ctx, newClient(t, p.Addr))
			return err == nil && len(dresp.Entries) == 1 && len(dresp.Entries[0].Values) == 1 && dresp.Entries[0].Values[0].Value == 4096
		})
	}
}

// TestProducerIDsAndAutoCreateOnFollower checks that a node that is not
// the metadata leader hands out producer ids (its blocks come from the
// leader), never one another node handed out, that an idempotent
// producer seeded with it alone produces, and that its Metadata creates
// an unknown topic through the leader.
func TestProducerIDsAndAutoCreateOnFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _, f := forwardCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	seen := map[int64]int{}
	for round := range 2 {
		for i, p := range procs {
			resp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, pinnedClient(t, p.Addr, i+1))
			if err != nil {
				t.Fatal(err)
			}
			if resp.ErrorCode != 0 || resp.ProducerID < 0 {
				t.Fatalf("InitProducerId on node %d (round %d): %v, id %d", i+1, round, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID)
			}
			if other, ok := seen[resp.ProducerID]; ok {
				t.Fatalf("producer id %d handed out by node %d and node %d", resp.ProducerID, other, i+1)
			}
			seen[resp.ProducerID] = i + 1
		}
	}

	// Auto-create through the follower's Metadata: the first answer has
	// the topic's partitions.
	follower := pinnedClient(t, procs[f].Addr, f+1)
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("fwd-auto")
	meta.Topics = append(meta.Topics, mt)
	meta.AllowAutoTopicCreation = true
	mresp, err := meta.RequestWith(ctx, follower)
	if err != nil {
		t.Fatal(err)
	}
	if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0 || len(mresp.Topics[0].Partitions) != 1 {
		t.Fatalf("Metadata auto-creating fwd-auto on a follower: %+v", mresp.Topics)
	}
	id := mresp.Topics[0].TopicID
	for _, p := range procs {
		eventually(t, "fwd-auto reaches "+p.Addr, func() bool {
			got, _ := topicOn(t, p.Addr, "fwd-auto")
			return got == id
		})
	}

	// An idempotent producer that knows only the follower.
	producer := newProducer(t, []string{procs[f].Addr}, "fwd-produced", kgo.AllowAutoTopicCreation())
	for i := range 20 {
		r := &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}
		if err := producer.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d through a follower-seeded idempotent producer: %v", i, err)
		}
	}
	if end := endOffset(t, []string{procs[f].Addr}, "fwd-produced"); end != 20 {
		t.Fatalf("fwd-produced ends at %d, want 20", end)
	}
}

// leaderOn returns the leader and leader epoch of topic's partition 0 as
// the node at addr names them (-1, -1 when it names none or does not
// answer).
func leaderOn(t *testing.T, addr, topic string) (leader, epoch int32) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return -1, -1
	}
	defer conn.Close()
	rc := &rawConn{tb: t, conn: conn, formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID("sluice-e2e-raw"))}
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := rc.roundTrip(req)
	if err != nil {
		return -1, -1
	}
	for _, mt := range resp.(*kmsg.MetadataResponse).Topics {
		if mt.ErrorCode == 0 && len(mt.Partitions) == 1 && mt.Partitions[0].ErrorCode == 0 {
			return mt.Partitions[0].Leader, mt.Partitions[0].LeaderEpoch
		}
	}
	return -1, -1
}

// TestMetadataNamesLeaderOnNodeWithoutReplica creates a partition with
// two replicas on three nodes and checks that the third node, which
// holds none, names the leader its Raft group elected and its epoch,
// before and after that leader is killed (kill -9) and restarted.
func TestMetadataNamesLeaderOnNodeWithoutReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _, f := forwardCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	create := kmsg.NewPtrCreateTopicsRequest()
	create.TimeoutMillis = 10_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "lead2", 1, 2
	create.Topics = append(create.Topics, rt)
	resp, err := create.RequestWith(ctx, pinnedClient(t, procs[f].Addr, f+1))
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics lead2: %v %v", err, resp)
	}
	_, replicas, _ := partitionState(t, procs[f].Addr, "lead2")
	if len(replicas) != 2 {
		t.Fatalf("lead2 has replicas %v", replicas)
	}
	outsider := -1
	for i := range procs {
		if !slices.Contains(replicas, int32(i+1)) {
			outsider = i
		}
	}
	// truth returns the replica that says it leads and its epoch.
	truth := func() (int32, int32) {
		for _, id := range replicas {
			if p := procs[id-1]; p.running() {
				if l, e := leaderOn(t, p.Addr, "lead2"); l == id {
					return l, e
				}
			}
		}
		return -1, -1
	}
	var leader, epoch int32
	eventually(t, "the node without a replica names lead2's leader and epoch", func() bool {
		leader, epoch = truth()
		l, e := leaderOn(t, procs[outsider].Addr, "lead2")
		return leader > 0 && l == leader && e == epoch
	})
	t.Logf("lead2 replicas %v, leader %d in epoch %d, node %d holds none", replicas, leader, epoch, outsider+1)

	// Two replicas elect no one while one is down: kill the leader and
	// start it again, so the group elects (either replica) in a later
	// epoch.
	procs[leader-1].Kill()
	procs[leader-1].Restart()
	var next, nextEpoch int32
	eventually(t, "the node without a replica names the leader after the kill", func() bool {
		next, nextEpoch = truth()
		l, e := leaderOn(t, procs[outsider].Addr, "lead2")
		return next > 0 && nextEpoch > epoch && l == next && e == nextEpoch
	})
	t.Logf("after kill -9 of node %d: leader %d in epoch %d", leader, next, nextEpoch)
}
