package consumergroup

import (
	"context"
	"os"
	"sort"
	"testing"
	"testing/synctest"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

const testGroup = "orders-consumers"

// openCluster opens a single-node cluster on dir, closed at cleanup.
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

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.OffsetsTopicPartitions = 4
	return cfg
}

// openCoordinator starts a coordinator on cl and waits for it to load;
// it is closed at cleanup (before the cluster).
func openCoordinator(t *testing.T, cl *replication.Cluster, cfg Config) *Coordinator {
	t.Helper()
	c, err := New(cl, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return c
}

// harness is a cluster with topics "t1" (3 partitions) and "t2" (2) and a
// coordinator.
type harness struct {
	t   *testing.T
	dir string
	cl  *replication.Cluster
	c   *Coordinator
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir()}
	h.cl = openCluster(t, h.dir)
	for _, tc := range []struct {
		name string
		n    int32
	}{{"t1", 3}, {"t2", 2}} {
		if _, err := h.cl.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: tc.name, Partitions: tc.n, ReplicationFactor: -1}); err != nil {
			t.Fatal(err)
		}
	}
	h.c = openCoordinator(t, h.cl, testConfig())
	return h
}

// restart closes coordinator and cluster cleanly and opens both again.
func (h *harness) restart() {
	h.t.Helper()
	ctx := context.Background()
	if err := h.c.Close(ctx); err != nil {
		h.t.Fatal(err)
	}
	if err := h.cl.Close(ctx); err != nil {
		h.t.Fatal(err)
	}
	h.cl = openCluster(h.t, h.dir)
	h.c = openCoordinator(h.t, h.cl, testConfig())
}

// crash copies the data directory as it is now (a process killed with
// -9 leaves exactly the files' contents) and opens a new cluster and
// coordinator on the copy; the old ones keep running until cleanup.
func (h *harness) crash() {
	h.t.Helper()
	dir := h.t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(h.dir)); err != nil {
		h.t.Fatal(err)
	}
	h.dir = dir
	h.cl = openCluster(h.t, dir)
	h.c = openCoordinator(h.t, h.cl, testConfig())
}

func subscription(topics ...string) []byte {
	md := kmsg.NewConsumerMemberMetadata()
	md.Version = 1
	md.Topics = topics
	return md.AppendTo(nil)
}

func ptr[T any](v T) *T { return &v }

// joinRequest is a v9 JoinGroup of a consumer subscribing to topics.
func joinRequest(memberID string, instanceID *string, topics ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group = testGroup
	req.MemberID = memberID
	req.InstanceID = instanceID
	req.SessionTimeoutMillis = 10000
	req.RebalanceTimeoutMillis = 30000
	req.ProtocolType = "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{
		{Name: "cooperative-sticky", Metadata: subscription(topics...)},
		{Name: "range", Metadata: subscription(topics...)},
	}
	return req
}

// join runs JoinGroup in a goroutine; the response arrives on the channel.
func (h *harness) join(req *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	return h.joinCtx(WithClient(context.Background(), "client", "/127.0.0.1"), req)
}

func (h *harness) joinCtx(ctx context.Context, req *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- h.c.JoinGroup(ctx, req) }()
	return ch
}

// memberID does the first step of a v4+ join and returns the id handed
// out.
func (h *harness) memberID() string {
	h.t.Helper()
	resp := <-h.join(joinRequest("", nil, "t1"))
	if resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" {
		h.t.Fatalf("first join: error %d member %q, want MEMBER_ID_REQUIRED and an id", resp.ErrorCode, resp.MemberID)
	}
	return resp.MemberID
}

func syncRequest(memberID string, generation int32, instanceID *string, assignments map[string][]byte) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group = testGroup
	req.MemberID = memberID
	req.Generation = generation
	req.InstanceID = instanceID
	req.ProtocolType = ptr("consumer")
	req.Protocol = ptr("cooperative-sticky")
	ids := make([]string, 0, len(assignments))
	for id := range assignments {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: assignments[id]})
	}
	return req
}

func (h *harness) sync(req *kmsg.SyncGroupRequest) <-chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- h.c.SyncGroup(context.Background(), req) }()
	return ch
}

func (h *harness) heartbeat(memberID string, generation int32, instanceID *string) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group = testGroup
	req.MemberID = memberID
	req.Generation = generation
	req.InstanceID = instanceID
	return h.c.Heartbeat(context.Background(), req).ErrorCode
}

func (h *harness) leave(members ...kmsg.LeaveGroupRequestMember) *kmsg.LeaveGroupResponse {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = testGroup
	req.Members = members
	return h.c.LeaveGroup(context.Background(), req)
}

func (h *harness) describe() kmsg.DescribeGroupsResponseGroup {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{testGroup}
	return h.c.DescribeGroups(context.Background(), req).Groups[0]
}

// stableGroup is a group formed by formGroup.
type stableGroup struct {
	members    []string // in join order
	instances  []*string
	leader     string
	generation int32
}

// formGroup joins n members (static when instances are given) into one
// generation, has the leader assign "assignment-<i>" to member i and
// checks every member gets its own.
func (h *harness) formGroup(n int, instances ...string) stableGroup {
	h.t.Helper()
	var g stableGroup
	chans := make([]<-chan *kmsg.JoinGroupResponse, n)
	for i := range n {
		var inst *string
		id := ""
		if i < len(instances) {
			inst = ptr(instances[i])
		} else {
			id = h.memberID()
		}
		g.instances = append(g.instances, inst)
		chans[i] = h.join(joinRequest(id, inst, "t1"))
		synctest.Wait() // join in order: the first is the leader
	}
	var leaderResp *kmsg.JoinGroupResponse
	for i, ch := range chans {
		resp := <-ch
		if resp.ErrorCode != 0 {
			h.t.Fatalf("join %d: error %d", i, resp.ErrorCode)
		}
		g.members = append(g.members, resp.MemberID)
		g.generation = resp.Generation
		g.leader = resp.LeaderID
		if resp.LeaderID == resp.MemberID {
			leaderResp = resp
		}
	}
	if leaderResp == nil || len(leaderResp.Members) != n {
		h.t.Fatalf("leader response %+v, want %d members", leaderResp, n)
	}
	assignments := make(map[string][]byte)
	for i, id := range g.members {
		assignments[id] = []byte{byte('a' + i)}
	}
	syncs := make([]<-chan *kmsg.SyncGroupResponse, n)
	for i, id := range g.members {
		var a map[string][]byte
		if id == g.leader {
			a = assignments
		}
		syncs[i] = h.sync(syncRequest(id, g.generation, g.instances[i], a))
	}
	for i, ch := range syncs {
		resp := <-ch
		if resp.ErrorCode != 0 || string(resp.MemberAssignment) != string(assignments[g.members[i]]) {
			h.t.Fatalf("sync %d: error %d assignment %q, want %q", i, resp.ErrorCode, resp.MemberAssignment, assignments[g.members[i]])
		}
	}
	return g
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
