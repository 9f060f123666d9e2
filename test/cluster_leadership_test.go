package test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceTo sends one record batch to topic's partition 0 at addr with
// Produce version and acks, and returns the partition's answer and the
// response's NodeEndpoints.
func produceTo(t *testing.T, addr, topic string, version, acks int16) (kmsg.ProduceResponseTopicPartition, []kmsg.ProduceResponseBroker) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = acks
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = makeBatch(1000, batchRecord{Value: []byte("v")})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := dialRaw(t, addr).mustRoundTrip(req).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response shape %+v", resp)
	}
	return resp.Topics[0].Partitions[0], resp.Brokers
}

// TestClusterNotLeaderNamesLeader checks KIP-951 against three processes:
// Produce v10+ and Fetch v16 sent to a follower answer
// NOT_LEADER_OR_FOLLOWER naming the leader, its epoch and its address;
// Produce v9 names none. Then min.insync.replicas=3 with a follower killed
// refuses acks=all (NOT_ENOUGH_REPLICAS) and still accepts acks=1.
func TestClusterNotLeaderNamesLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	const topic = "kip951"
	createReplicatedTopic(t, procs, topic)
	leaderID, _, _ := partitionState(t, procs[0].Addr, topic)
	leader := procs[leaderID-1]
	follower := procs[leaderID%3]
	other := procs[(leaderID+1)%3]

	sp, brokers := produceTo(t, follower.Addr, topic, 11, -1)
	if sp.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to a follower: %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(sp.ErrorCode))
	}
	if sp.CurrentLeader.LeaderID != leaderID || sp.CurrentLeader.LeaderEpoch < 1 {
		t.Errorf("produce v11 current leader %+v, want node %d with its epoch", sp.CurrentLeader, leaderID)
	}
	if len(brokers) != 1 || fmt.Sprintf("%s:%d", brokers[0].Host, brokers[0].Port) != leader.Addr || brokers[0].NodeID != leaderID {
		t.Errorf("produce v11 node endpoints %+v, want node %d at %s", brokers, leaderID, leader.Addr)
	}
	if sp, brokers := produceTo(t, follower.Addr, topic, 9, -1); sp.CurrentLeader.LeaderID != -1 || len(brokers) != 0 {
		t.Errorf("produce v9 names current leader %+v and endpoints %+v, want none", sp.CurrentLeader, brokers)
	}

	freq := kmsg.NewPtrFetchRequest()
	freq.SetVersion(16)
	freq.SessionEpoch = -1
	freq.MaxBytes = 1 << 20
	topicID := [16]byte{}
	for _, mt := range metadataOf(t, follower.Addr).Topics {
		if mt.Topic != nil && *mt.Topic == topic {
			topicID = mt.TopicID
		}
	}
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = topicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	freq.Topics = append(freq.Topics, ft)
	fresp := dialRaw(t, follower.Addr).mustRoundTrip(freq).(*kmsg.FetchResponse)
	if len(fresp.Topics) != 1 || len(fresp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response shape %+v", fresp)
	}
	fsp := fresp.Topics[0].Partitions[0]
	if fsp.ErrorCode != kerr.NotLeaderForPartition.Code || fsp.CurrentLeader.LeaderID != leaderID || fsp.CurrentLeader.LeaderEpoch < 1 {
		t.Errorf("fetch v16 from a follower: %v, current leader %+v; want NOT_LEADER_OR_FOLLOWER naming node %d",
			kerr.ErrorForCode(fsp.ErrorCode), fsp.CurrentLeader, leaderID)
	}
	if len(fresp.Brokers) != 1 || fmt.Sprintf("%s:%d", fresp.Brokers[0].Host, fresp.Brokers[0].Port) != leader.Addr {
		t.Errorf("fetch v16 node endpoints %+v, want the leader at %s", fresp.Brokers, leader.Addr)
	}

	// min.insync.replicas=3, set through the controller.
	var controller int32
	eventually(t, "a controller", func() bool {
		controller = metadataOf(t, leader.Addr).ControllerID
		return controller > 0
	})
	areq := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value = "min.insync.replicas", kmsg.StringPtr("3")
	res.Configs = append(res.Configs, cfg)
	areq.Resources = append(areq.Resources, res)
	aresp := dialRaw(t, procs[controller-1].Addr).mustRoundTrip(areq).(*kmsg.IncrementalAlterConfigsResponse)
	if code := aresp.Resources[0].ErrorCode; code != 0 {
		t.Fatalf("set min.insync.replicas=3: %v", kerr.ErrorForCode(code))
	}
	if sp, _ := produceTo(t, leader.Addr, topic, 11, -1); sp.ErrorCode != 0 {
		t.Fatalf("acks=all with every replica in sync: %v", kerr.ErrorForCode(sp.ErrorCode))
	}

	other.Kill()
	eventually(t, "acks=all refused with NOT_ENOUGH_REPLICAS once a replica is down", func() bool {
		sp, _ := produceTo(t, leader.Addr, topic, 11, -1)
		return sp.ErrorCode == kerr.NotEnoughReplicas.Code
	})
	if sp, _ := produceTo(t, leader.Addr, topic, 11, 1); sp.ErrorCode != 0 {
		t.Errorf("acks=1 with a replica down: %v, want accepted", kerr.ErrorForCode(sp.ErrorCode))
	}
}
