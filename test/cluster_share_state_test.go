package test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"syscall"
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

	// FindCoordinator key type 2 names the coordinator, from any node.
	find := kmsg.NewPtrFindCoordinatorRequest()
	find.Version, find.CoordinatorType = 6, 2
	find.CoordinatorKeys = []string{sharestate.CoordinatorKey(key)}
	findConn := dialRaw(t, remote.Addr)
	eventually(t, fmt.Sprintf("FindCoordinator (share) at %s naming node %d", remote.Addr, leader), func() bool {
		co := findConn.mustRoundTrip(find).(*kmsg.FindCoordinatorResponse).Coordinators[0]
		return co.ErrorCode == 0 && co.NodeID == leader
	})

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
	remoteEach := time.Since(began) / writes
	// The same writes through the coordinator's own persister (the local
	// path): the difference is the hop between nodes.
	local := adminBase(t, procs[leader-1])
	began = time.Now()
	for i := range int64(writes) {
		mustShareState(t, local, call("write", func(r *admin.ShareStateRequest) {
			r.StateEpoch, r.LeaderEpoch, r.StartOffset = 1, 1, -1
			r.Batches = []sharestate.Batch{
				{First: 10 * i, Last: 10*i + 9, State: sharestate.Acknowledged, DeliveryCount: 1},
				{First: 10*i + 10, Last: 10*i + 12, State: sharestate.Available, DeliveryCount: 2},
			}
		}))
	}
	t.Logf("write latency over %d sequential writes (HTTP to the node included): through a node that is not the coordinator %s, through the coordinator %s",
		writes, remoteEach, time.Since(began)/writes)
	// Concurrent writers of keys of the same coordinator share the
	// node's one client of it: their requests are pipelined on one
	// connection and their commits overlap.
	const writers, each = 8, 10
	var keys []admin.ShareStateRequest
	for w := range writers {
		k := sharestate.Key{Group: fmt.Sprintf("share-failover-%d", w), TopicID: key.TopicID}
		for part := int32(0); ; part++ {
			if k.Partition = part; sharestate.PartitionFor(k, 3) == p {
				break
			}
		}
		req := call("initialize", func(r *admin.ShareStateRequest) {
			r.Group, r.Partition, r.StateEpoch, r.StartOffset = k.Group, k.Partition, 0, 0
		})
		mustShareState(t, base, req)
		keys = append(keys, req)
	}
	began = time.Now()
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range int64(each) {
				req := k
				req.Op, req.LeaderEpoch, req.StartOffset = "write", 0, -1
				req.Batches = []sharestate.Batch{{First: i, Last: i, State: sharestate.Acknowledged, DeliveryCount: 1}}
				if status, out := shareStateCall(t, base, req); status != http.StatusOK {
					t.Errorf("concurrent write %d of %s: %s", i, req.Group, out.Error)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d concurrent writers through a node that is not the coordinator: %.0f writes/s", writers, float64(writers*each)/time.Since(began).Seconds())
	for _, k := range keys {
		req := k
		req.Op, req.LeaderEpoch = "read", 0
		if s := mustShareState(t, base, req); len(s.Batches) != 1 || s.Batches[0] != (sharestate.Batch{First: 0, Last: each - 1, State: sharestate.Acknowledged, DeliveryCount: 1}) {
			t.Fatalf("state of %s after concurrent writes: %+v", k.Group, *s)
		}
	}

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

// TestClusterShareStateFrozenCoordinator freezes the share coordinator of
// a key (SIGSTOP) while another node's persister writes: the write that
// the frozen node never answers is given up on, and lands at the new
// coordinator once the partition's leadership has moved.
func TestClusterShareStateFrozenCoordinator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	procs, _ := startMetadataCluster(t, 3, "--debug-share-state")
	key := sharestate.Key{Group: "share-frozen", TopicID: [16]byte{0x77, 15: 3}, Partition: 0}
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
	call := func(op string, change func(*admin.ShareStateRequest)) admin.ShareStateRequest {
		req := admin.ShareStateRequest{Op: op, Group: key.Group, TopicID: base64.RawURLEncoding.EncodeToString(key.TopicID[:]),
			Partition: key.Partition, TimeoutMillis: 45_000}
		if change != nil {
			change(&req)
		}
		return req
	}
	mustShareState(t, base, call("initialize", func(r *admin.ShareStateRequest) { r.StateEpoch, r.StartOffset = 0, 100 }))

	frozen := procs[leader-1]
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP node %d: %v", leader, err)
	}
	t.Cleanup(func() { _ = frozen.cmd.Process.Signal(syscall.SIGCONT) })
	began := time.Now()
	mustShareState(t, base, call("write", func(r *admin.ShareStateRequest) {
		r.StateEpoch, r.LeaderEpoch, r.StartOffset = 0, 4, 105
		r.Batches = []sharestate.Batch{{First: 105, Last: 109, State: sharestate.Archived, DeliveryCount: 5}}
	}))
	t.Logf("write with the coordinator frozen answered after %s", time.Since(began))
	want := sharestate.State{StateEpoch: 0, LeaderEpoch: 4, StartOffset: 105, Batches: []sharestate.Batch{{First: 105, Last: 109, State: sharestate.Archived, DeliveryCount: 5}}}
	if s := mustShareState(t, base, call("read", func(r *admin.ShareStateRequest) { r.LeaderEpoch = 4 })); !reflect.DeepEqual(*s, want) {
		t.Fatalf("state with the old coordinator frozen: %+v, want %+v", *s, want)
	}
	// Thawed, the old coordinator steps down and holds the same state.
	if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT node %d: %v", leader, err)
	}
	thawed := adminBase(t, frozen)
	if s := mustShareState(t, thawed, call("read", func(r *admin.ShareStateRequest) { r.LeaderEpoch = 4 })); !reflect.DeepEqual(*s, want) {
		t.Fatalf("state through the thawed node: %+v, want %+v", *s, want)
	}
}
