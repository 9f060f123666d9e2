package sharestate

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

// harness is a single-node cluster with a share coordinator and its
// Router (no peers: every key is local).
type harness struct {
	t   *testing.T
	dir string
	cl  *replication.Cluster
	c   *Coordinator
	r   *Router
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir()}
	h.cl = openCluster(t, h.dir)
	h.open()
	return h
}

func openCluster(t *testing.T, dir string) *replication.Cluster {
	t.Helper()
	cfg := replication.DefaultConfig()
	cfg.DataDir = dir
	cl, err := replication.Open(cfg, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(context.Background()) })
	return cl
}

func (h *harness) open() {
	h.t.Helper()
	cfg := DefaultConfig()
	cfg.StateTopicPartitions = 4
	c, err := New(h.cl, cfg, Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.c = c
	h.r = NewRouter(c, nil, RouterOptions{})
	h.t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			h.t.Error(err)
		}
	})
}

// restart closes the coordinator and the cluster and opens both again on
// the same data.
func (h *harness) restart() {
	h.t.Helper()
	if err := h.c.Close(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	if err := h.cl.Close(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.cl = openCluster(h.t, h.dir)
	h.open()
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var (
	keyA = Key{Group: "g1", TopicID: [16]byte{0xa}, Partition: 0}
	keyB = Key{Group: "g1", TopicID: [16]byte{0xa}, Partition: 1}
)

func TestCoordinatorLifecycle(t *testing.T) {
	h := newHarness(t)
	if _, ok := h.cl.Topic(TopicName); !ok {
		t.Fatalf("%s not created", TopicName)
	}
	s, err := h.r.Read(ctx(t), keyA, 0)
	if err != nil || s.StateEpoch != -1 || s.StartOffset != -1 || len(s.Batches) != 0 {
		t.Fatalf("read of an unknown key: %+v, %v", s, err)
	}
	if err := h.r.Write(ctx(t), keyA, Write{StateEpoch: 0, LeaderEpoch: 0, StartOffset: 5}); !errors.Is(err, kerr.FencedStateEpoch) {
		t.Fatalf("write before initialize: %v, want FENCED_STATE_EPOCH", err)
	}
	if err := h.r.Initialize(ctx(t), keyA, 1, 10); err != nil {
		t.Fatal(err)
	}
	// A retry of the same initialization succeeds.
	if err := h.r.Initialize(ctx(t), keyA, 1, 10); err != nil {
		t.Fatalf("retried initialize: %v", err)
	}
	if s, err := h.r.Read(ctx(t), keyA, 3); err != nil || s.StateEpoch != 1 || s.StartOffset != 10 || s.LeaderEpoch != 3 {
		t.Fatalf("read after initialize: %+v, %v", s, err)
	}
	w := Write{StateEpoch: 1, LeaderEpoch: 3, StartOffset: 12, Batches: []Batch{
		{First: 12, Last: 14, State: Acknowledged, DeliveryCount: 1},
		{First: 15, Last: 19, State: Available, DeliveryCount: 2},
	}}
	if err := h.r.Write(ctx(t), keyA, w); err != nil {
		t.Fatal(err)
	}
	if err := h.r.Write(ctx(t), keyA, Write{StateEpoch: 1, LeaderEpoch: 2, StartOffset: -1}); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("write of an older leader: %v, want FENCED_LEADER_EPOCH", err)
	}
	if _, err := h.r.Read(ctx(t), keyA, 2); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("read of an older leader: %v, want FENCED_LEADER_EPOCH", err)
	}
	want := State{StateEpoch: 1, LeaderEpoch: 3, StartOffset: 12, Batches: w.Batches}
	if s, err := h.r.Read(ctx(t), keyA, 3); err != nil || !reflect.DeepEqual(s, want) {
		t.Fatalf("read: %+v, %v; want %+v", s, err, want)
	}
	if sum, err := h.r.ReadSummary(ctx(t), keyA); err != nil || sum != (Summary{StateEpoch: 1, LeaderEpoch: 3, StartOffset: 12, DeliveryCompleteCount: 3}) {
		t.Fatalf("summary: %+v, %v", sum, err)
	}
	if err := h.r.Initialize(ctx(t), keyB, 0, -1); err != nil {
		t.Fatal(err)
	}

	// The state survives a restart: it is loaded from the log.
	h.restart()
	if s, err := h.r.Read(ctx(t), keyA, 3); err != nil || !reflect.DeepEqual(s, want) {
		t.Fatalf("read after restart: %+v, %v; want %+v", s, err, want)
	}
	// A reset fences the writer's state epoch.
	if err := h.r.Initialize(ctx(t), keyA, 2, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.r.Write(ctx(t), keyA, w); !errors.Is(err, kerr.FencedStateEpoch) {
		t.Fatalf("write after a reset: %v, want FENCED_STATE_EPOCH", err)
	}
	if err := h.r.Delete(ctx(t), keyA); err != nil {
		t.Fatal(err)
	}
	if err := h.r.Delete(ctx(t), keyA); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	h.restart()
	if s, err := h.r.Read(ctx(t), keyA, 3); err != nil || s.StateEpoch != -1 {
		t.Fatalf("read of a deleted key after restart: %+v, %v", s, err)
	}
	if s, err := h.r.Read(ctx(t), keyB, 0); err != nil || s.StateEpoch != 0 || s.StartOffset != -1 {
		t.Fatalf("read of the other key after restart: %+v, %v", s, err)
	}
}

func TestCoordinatorRefusesBadKeys(t *testing.T) {
	h := newHarness(t)
	for _, k := range []Key{
		{Group: "", TopicID: [16]byte{1}, Partition: 0},
		{Group: "g", TopicID: [16]byte{1}, Partition: -1},
		{Group: "g", Partition: 0},
	} {
		if err := h.r.Initialize(ctx(t), k, 0, 0); !errors.Is(err, kerr.InvalidRequest) {
			t.Errorf("initialize %+v: %v, want INVALID_REQUEST", k, err)
		}
	}
}

// TestCoordinatorPipelinedWrites begins many writes of one key before
// waiting for any, as a connection pipelining its requests does: they
// apply in the order begun, and the answers show only durable state.
func TestCoordinatorPipelinedWrites(t *testing.T) {
	h := newHarness(t)
	if err := h.r.Initialize(ctx(t), keyA, 0, 0); err != nil {
		t.Fatal(err)
	}
	const n = 50
	var finishes []func(context.Context) *kmsg.WriteShareGroupStateResponse
	for i := range n {
		req := kmsg.NewPtrWriteShareGroupStateRequest()
		req.GroupID = keyA.Group
		rt := kmsg.NewWriteShareGroupStateRequestTopic()
		rt.TopicID = keyA.TopicID
		rp := kmsg.NewWriteShareGroupStateRequestTopicPartition()
		rp.Partition, rp.StateEpoch, rp.LeaderEpoch, rp.StartOffset = 0, 0, int32(i), -1
		sb := kmsg.NewWriteShareGroupStateRequestTopicPartitionStateBatch()
		sb.FirstOffset, sb.LastOffset, sb.DeliveryState, sb.DeliveryCount = int64(i), int64(i), int8(Acknowledged), 1
		rp.StateBatches = append(rp.StateBatches, sb)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		finishes = append(finishes, h.c.WriteShareGroupState(req))
	}
	var wg sync.WaitGroup
	for i, finish := range finishes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := finish(ctx(t)).Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Errorf("write %d: %v", i, kerr.ErrorForCode(code))
			}
		}()
	}
	wg.Wait()
	want := State{StateEpoch: 0, LeaderEpoch: n - 1, StartOffset: 0, Batches: []Batch{{First: 0, Last: n - 1, State: Acknowledged, DeliveryCount: 1}}}
	if s, err := h.r.Read(ctx(t), keyA, n-1); err != nil || !reflect.DeepEqual(s, want) {
		t.Fatalf("read: %+v, %v; want %+v", s, err, want)
	}
	h.restart()
	if s, err := h.r.Read(ctx(t), keyA, n-1); err != nil || !reflect.DeepEqual(s, want) {
		t.Fatalf("read after restart: %+v, %v; want %+v", s, err, want)
	}
}

// TestRouterGivesUpAtDeadline checks that a key whose coordinator is
// never reachable fails with the coordinator error once ctx ends.
func TestRouterGivesUpAtDeadline(t *testing.T) {
	h := newHarness(t)
	if err := h.c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := h.r.Initialize(ctx, keyA, 0, 0)
	if !errors.Is(err, kerr.NotCoordinator) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("initialize on a closed coordinator: %v, want NOT_COORDINATOR and the deadline", err)
	}
}

func TestPartitionForIsKafkas(t *testing.T) {
	// Kafka's key text: group, topic id in unpadded URL-safe base64,
	// partition.
	k := Key{Group: "g", TopicID: [16]byte{0xfb, 0xff}, Partition: 3}
	if got, want := CoordinatorKey(k), "g:-_8AAAAAAAAAAAAAAAAAAA:3"; got != want {
		t.Fatalf("CoordinatorKey = %q, want %q", got, want)
	}
	for p := range int32(8) {
		k.Partition = p
		if got := PartitionFor(k, 16); got < 0 || got >= 16 {
			t.Fatalf("PartitionFor = %d", got)
		}
	}
}

func TestParseCoordinatorKey(t *testing.T) {
	k := Key{Group: "a:b", TopicID: [16]byte{1, 15: 2}, Partition: 12}
	if got, err := ParseCoordinatorKey(CoordinatorKey(k)); err != nil || got != k {
		t.Fatalf("round trip of %+v: %+v, %v", k, got, err)
	}
	for _, bad := range []string{"", "g", "g:AQAAAAAAAAAAAAAAAAAAAg", "g:AQAAAAAAAAAAAAAAAAAAAg:-1", "g:AQAAAAAAAAAAAAAAAAAAAg:x",
		"g:AQAA:1", ":AQAAAAAAAAAAAAAAAAAAAg:1", "g:AAAAAAAAAAAAAAAAAAAAAA:1"} {
		if k, err := ParseCoordinatorKey(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, k)
		}
	}
}

func TestFindCoordinatorShareKeys(t *testing.T) {
	h := newHarness(t)
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorType = 6, 2
	req.CoordinatorKeys = []string{CoordinatorKey(keyA), "not-a-key"}
	var resp *kmsg.FindCoordinatorResponse
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp = h.c.FindCoordinator(context.Background(), req)
		if resp.Coordinators[0].ErrorCode != kerr.CoordinatorNotAvailable.Code || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // poll: the partition's leader is being elected
	}
	if co := resp.Coordinators[0]; co.ErrorCode != 0 || co.NodeID != h.cl.NodeID() {
		t.Fatalf("share key: node %d, %v", co.NodeID, kerr.ErrorForCode(co.ErrorCode))
	}
	if co := resp.Coordinators[1]; co.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("bad key: %v, want INVALID_REQUEST", kerr.ErrorForCode(co.ErrorCode))
	}
}
