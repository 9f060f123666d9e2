package test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/cmd/sluice/admin"
	"github.com/sluice-io/sluice/consumergroup/sharestate"
)

// shareStateCall runs one share-state operation through the persister of
// the node whose admin listener is base (debug.share.state) and returns
// the HTTP status and the answer.
func shareStateCall(t *testing.T, base string, req admin.ShareStateRequest) (int, admin.ShareStateResponse) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	client := http.Client{Timeout: testTimeout}
	resp, err := client.Post(base+admin.ShareStatePath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s %s: %v", base, req.Op, err)
	}
	defer resp.Body.Close()
	var out admin.ShareStateResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: status %d, undecodable answer: %v", base, req.Op, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// mustShareState is shareStateCall failing the test unless it succeeds.
func mustShareState(t *testing.T, base string, req admin.ShareStateRequest) *sharestate.State {
	t.Helper()
	status, out := shareStateCall(t, base, req)
	if status != http.StatusOK {
		t.Fatalf("%s through %s: status %d: %s", req.Op, base, status, out.Error)
	}
	return out.State
}

// shareStateLeader returns the leader of __share_group_state partition p
// as the node at addr reports it, -1 when none.
func shareStateLeader(t *testing.T, addr string, p int32) int32 {
	t.Helper()
	for _, topic := range metadataOf(t, addr).Topics {
		if topic.Topic == nil || *topic.Topic != sharestate.TopicName {
			continue
		}
		for _, part := range topic.Partitions {
			if part.Partition == p && part.ErrorCode == 0 {
				return part.Leader
			}
		}
	}
	return -1
}

// TestClusterShareStateFailover drives a share-partition's state through
// the persister of a node that is not its share coordinator (its
// requests cross the Kafka protocol to the coordinator), kills the
// coordinator with kill -9, and checks that the state read through
// another node is the last acknowledged write, that the stored leader
// epoch still fences, and that the killed node reads the same state
// once restarted.
func TestClusterShareStateFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	procs, _ := startMetadataCluster(t, 3, "--debug-share-state")
	key := sharestate.Key{Group: "share-failover", TopicID: [16]byte{0x5a, 0x11, 3: 7, 15: 1}, Partition: 2}
	p := sharestate.PartitionFor(key, 3)
	var leader int32 = -1
	eventually(t, "a leader of the key's "+sharestate.TopicName+" partition", func() bool {
		leader = shareStateLeader(t, procs[0].Addr, p)
		return leader > 0
	})
	var remote *sluiceProcess
	for i, proc := range procs {
		if int32(i+1) != leader {
			remote = proc
			break
		}
	}
	base := adminBase(t, remote)
	topicID := base64.RawURLEncoding.EncodeToString(key.TopicID[:])
	call := func(op string, change func(*admin.ShareStateRequest)) admin.ShareStateRequest {
		req := admin.ShareStateRequest{Op: op, Group: key.Group, TopicID: topicID, Partition: key.Partition, TimeoutMillis: 30_000}
		if change != nil {
			change(&req)
		}
		return req
	}

	// The share-state APIs answer NOT_COORDINATOR on a node that does not
	// coordinate the key: the persister's requests above crossed to the
	// coordinator.
	raw := kmsg.NewPtrReadShareGroupStateRequest()
	raw.GroupID = key.Group
	rt := kmsg.NewReadShareGroupStateRequestTopic()
	rt.TopicID = key.TopicID
	rp := kmsg.NewReadShareGroupStateRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch = key.Partition, -1
	rt.Partitions = append(rt.Partitions, rp)
	raw.Topics = append(raw.Topics, rt)
	if got := dialRaw(t, remote.Addr).mustRoundTrip(raw).(*kmsg.ReadShareGroupStateResponse).Topics[0].Partitions[0].ErrorCode; got != kerr.NotCoordinator.Code {
		t.Fatalf("ReadShareGroupState at a node that does not coordinate the key: %v, want NOT_COORDINATOR", kerr.ErrorForCode(got))
	}

	if s := mustShareState(t, base, call("read", func(r *admin.ShareStateRequest) { r.LeaderEpoch = 1 })); s.StateEpoch != -1 {
		t.Fatalf("state of a new key: %+v", s)
	}
	mustShareState(t, base, call("initialize", func(r *admin.ShareStateRequest) { r.StateEpoch, r.StartOffset = 1, 0 }))
	mustShareState(t, base, call("read", func(r *admin.ShareStateRequest) { r.LeaderEpoch = 1 }))
	const writes = 30
	began := time.Now()
	for i := range int64(writes) {
		mustShareState(t, base, call("write", func(r *admin.ShareStateRequest) {
			r.StateEpoch, r.LeaderEpoch, r.StartOffset = 1, 1, -1
			r.Batches = []sharestate.Batch{
				{First: 10 * i, Last: 10*i + 9, State: sharestate.Acknowledged, DeliveryCount: 1},
				{First: 10*i + 10, Last: 10*i + 12, State: sharestate.Available, DeliveryCount: 2},
			}
		}))
	}
	t.Logf("%d writes through node %s to coordinator %d: %s each", writes, remote.Addr, leader, time.Since(began)/writes)
	want := sharestate.State{StateEpoch: 1, LeaderEpoch: 1, StartOffset: 0, Batches: []sharestate.Batch{
		{First: 0, Last: 10*writes - 1, State: sharestate.Acknowledged, DeliveryCount: 1},
		{First: 10 * writes, Last: 10*writes + 2, State: sharestate.Available, DeliveryCount: 2},
	}}
	if s := mustShareState(t, base, call("read", func(r *admin.ShareStateRequest) { r.LeaderEpoch = 1 })); !reflect.DeepEqual(*s, want) {
		t.Fatalf("state before the failover: %+v, want %+v", *s, want)
	}

	procs[leader-1].Kill()
	// The read waits (retries inside the persister) until a new leader
	// of the partition has loaded it.
	if s := mustShareState(t, base, call("read", func(r *admin.ShareStateRequest) { r.LeaderEpoch = 2 })); !reflect.DeepEqual(*s, func() sharestate.State { w := want; w.LeaderEpoch = 2; return w }()) {
		t.Fatalf("state after kill -9 of the coordinator: %+v, want %+v at leader epoch 2", *s, want)
	}
	var next int32
	eventually(t, "a new leader of the key's "+sharestate.TopicName+" partition", func() bool {
		next = shareStateLeader(t, remote.Addr, p)
		return next > 0 && next != leader
	})
	// The stored leader epoch survived the failover: the old one is
	// fenced.
	status, out := shareStateCall(t, base, call("write", func(r *admin.ShareStateRequest) {
		r.StateEpoch, r.LeaderEpoch, r.StartOffset = 1, 1, -1
		r.Batches = []sharestate.Batch{{First: 0, Last: 0, State: sharestate.Archived, DeliveryCount: 1}}
	}))
	if status != http.StatusConflict || out.Code != kerr.FencedLeaderEpoch.Message {
		t.Fatalf("write of a deposed leader after the failover: status %d, %s (%s); want FENCED_LEADER_EPOCH", status, out.Code, out.Error)
	}

	before := len(adminListenLine.FindAllString(procs[leader-1].Output(), -1))
	procs[leader-1].Restart()
	// Its admin listener has a new port: wait for the restarted
	// process's own line.
	eventually(t, "the restarted node's admin listener in its log", func() bool {
		return len(adminListenLine.FindAllString(procs[leader-1].Output(), -1)) > before
	})
	restarted := adminBase(t, procs[leader-1])
	// The admin listener comes up before the node has opened its data
	// and registered /debug/share-state.
	eventually(t, "/debug/share-state on the restarted node", func() bool {
		resp, err := http.Post(restarted+admin.ShareStatePath, "application/json", bytes.NewReader([]byte("{}")))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusNotFound
	})
	want.LeaderEpoch = 2
	if s := mustShareState(t, restarted, call("read", func(r *admin.ShareStateRequest) { r.LeaderEpoch = 2 })); !reflect.DeepEqual(*s, want) {
		t.Fatalf("state read through the restarted node: %+v, want %+v", *s, want)
	}
	if s := mustShareState(t, restarted, call("summary", nil)); s.StateEpoch != 1 || s.LeaderEpoch != 2 || s.StartOffset != 0 {
		t.Fatalf("summary through the restarted node: %+v", *s)
	}
}
