package consumergroup

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
)

// leaders is a fake cluster's leadership of __consumer_offsets: who leads
// each partition, in which epoch. Tests flip it.
type leaders struct {
	mu     sync.Mutex
	node   map[int32]int32
	epochs map[int32]int32
	// down is the node the failure detector holds down, 0 for none.
	down int32
}

func (l *leaders) setDown(node int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = node
}

func (l *leaders) isDown(node int32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.down == node
}

func (l *leaders) set(p, node, epoch int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.node[p], l.epochs[p] = node, epoch
}

func (l *leaders) get(p int32) (int32, int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node[p], l.epochs[p]
}

// fakeCluster is node self of a two-node cluster whose partitions all live
// in one real single-node cluster: two coordinators (nodes 1 and 2) share
// __consumer_offsets, and the leadership table decides which of them may
// append to and read each of its partitions, as a replicated partition
// answers NOT_LEADER_OR_FOLLOWER on a node that does not lead it.
type fakeCluster struct {
	self int32
	real *replication.Cluster
	lead *leaders
	txn  *txnLog
}

type fakeTopic struct {
	cluster *fakeCluster
	topic   *replication.Topic
}

type fakePartition struct {
	cluster *fakeCluster
	handle  *replication.Partition
	index   int32
}

var _ ClusterOf[*fakeTopic, *fakePartition] = (*fakeCluster)(nil)

func (f *fakeCluster) NodeID() int32 { return f.self }

func (f *fakeCluster) Brokers() []replication.Broker {
	return []replication.Broker{{NodeID: 1, Host: "127.0.0.1", Port: 9092, Down: f.lead.isDown(1)}, {NodeID: 2, Host: "127.0.0.2", Port: 9092, Down: f.lead.isDown(2)}}
}

func (f *fakeCluster) Topic(name string) (*fakeTopic, bool) {
	t, ok := f.real.Topic(name)
	if !ok {
		return nil, false
	}
	return &fakeTopic{f, t}, true
}

func (f *fakeCluster) CreateTopic(ctx context.Context, req replication.CreateTopicRequest) (*fakeTopic, error) {
	t, err := f.real.CreateTopic(ctx, req)
	if err != nil {
		return nil, err
	}
	return &fakeTopic{f, t}, nil
}

func (t *fakeTopic) PartitionCount() int32 { return t.topic.PartitionCount() }

func (t *fakeTopic) ID() [16]byte { return t.topic.ID() }

func (t *fakeTopic) Partition(index int32) *fakePartition {
	return &fakePartition{t.cluster, t.topic.Partition(index), index}
}

func (p *fakePartition) Leader() (int32, int32) {
	if p.handle.Topic != OffsetsTopic {
		return 1, 0
	}
	return p.cluster.lead.get(p.index)
}

func (p *fakePartition) leads() bool {
	node, _ := p.Leader()
	return node == p.cluster.self
}

func (p *fakePartition) Append(ctx context.Context, batches []byte) (replication.Appended, error) {
	if !p.leads() {
		return replication.Appended{}, kerr.NotLeaderForPartition
	}
	return p.handle.Append(ctx, batches)
}

// AppendAsCoordinatorVerified stores the transactional batch through the
// single-node cluster's plain Append, the batch's producer and attributes
// kept aside in the txnLog and put back by Read: the coordinator's own
// logic is tested here, the partition's transactional append and its
// verification guard in their package. A guard listed in the txnLog's
// refused set is refused as a guard a marker ended.
func (p *fakePartition) AppendAsCoordinatorVerified(ctx context.Context, batches []byte, guard uint64) (replication.Appended, error) {
	if !p.leads() {
		return replication.Appended{}, kerr.NotLeaderForPartition
	}
	if p.cluster.txn.refuses(guard) {
		return replication.Appended{}, kerr.InvalidTxnState
	}
	return p.cluster.txn.append(ctx, p, batches)
}

func (p *fakePartition) Read(dst []byte, req partition.ReadRequest) (partition.ReadResult, error) {
	if !p.leads() {
		return partition.ReadResult{}, kerr.NotLeaderForPartition
	}
	rr, err := p.handle.Read(dst, req)
	if err == nil && p.cluster.txn != nil {
		rr.Records = p.cluster.txn.patch(p.index, rr.Records)
	}
	return rr, err
}

func (p *fakePartition) Offsets() partition.Offsets {
	if !p.leads() {
		return partition.Offsets{}
	}
	return p.handle.Offsets()
}

// twoCoordinators opens a real cluster with topic "t1" (3 partitions), a
// leadership table in which node 1 leads every __consumer_offsets
// partition in epoch 1, and the coordinators of nodes 1 and 2.
func twoCoordinators(t *testing.T) (*leaders, *Coordinator, *Coordinator) {
	t.Helper()
	cl := openCluster(t, t.TempDir())
	if _, err := cl.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "t1", Partitions: 3, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	lead := &leaders{node: map[int32]int32{}, epochs: map[int32]int32{}}
	txn := &txnLog{batches: map[int32]map[int64]log.BatchHeader{}}
	for p := range cfg.OffsetsTopicPartitions {
		lead.set(p, 1, 1)
	}
	var cs [2]*Coordinator
	for i := range cs {
		c, err := New(&fakeCluster{self: int32(i + 1), real: cl, lead: lead, txn: txn}, cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		cs[i] = c
	}
	return lead, cs[0], cs[1]
}

// settled runs op until it answers something other than
// COORDINATOR_LOAD_IN_PROGRESS, waiting for the load between tries.
func settled(t *testing.T, c *Coordinator, op func() int16) int16 {
	t.Helper()
	for range 10 {
		c.mu.Lock()
		ended := c.loadEnded
		c.mu.Unlock()
		code := op()
		if code != kerr.CoordinatorLoadInProgress.Code {
			return code
		}
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("load did not end")
		}
	}
	t.Fatal("still loading after 10 loads")
	return 0
}

func commitOffset(c *Coordinator, group string, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t1"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode
}

// fetchOffset returns the error code and group t1-0's committed offset.
func fetchOffset(c *Coordinator, group string) (int16, int64) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group = group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t1", Partitions: []int32{0}}}
	resp := c.OffsetFetch(context.Background(), req)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode, -1
	}
	return 0, resp.Topics[0].Partitions[0].Offset
}

func findCoordinator(c *Coordinator, group string) kmsg.FindCoordinatorResponseCoordinator {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 4
	req.CoordinatorKeys = []string{group}
	return c.FindCoordinator(context.Background(), req).Coordinators[0]
}

// TestFindCoordinatorLeaderDown checks that FindCoordinator never names a
// leader the failure detector holds down (replication.Broker.Down):
// COORDINATOR_NOT_AVAILABLE, so that the client asks again, and the
// leader once it is up again.
func TestFindCoordinatorLeaderDown(t *testing.T) {
	lead, _, c2 := twoCoordinators(t)
	lead.setDown(1)
	if co := findCoordinator(c2, testGroup); co.ErrorCode != kerr.CoordinatorNotAvailable.Code || co.NodeID != -1 || co.ErrorMessage == nil {
		t.Fatalf("FindCoordinator while leader 1 is down: %+v, want COORDINATOR_NOT_AVAILABLE", co)
	}
	lead.setDown(0)
	if co := findCoordinator(c2, testGroup); co.ErrorCode != 0 || co.NodeID != 1 {
		t.Fatalf("FindCoordinator once leader 1 is up: %+v", co)
	}
}

// TestCoordinatorFollowsLeadership moves a group's __consumer_offsets
// partition between two coordinators: FindCoordinator names the leader;
// the node that lost it answers NOT_COORDINATOR at once; the node that
// gained it loads the partition (COORDINATOR_LOAD_IN_PROGRESS meanwhile)
// and serves every offset committed before, and on regaining leadership
// in a later epoch a node drops what it held and reloads.
func TestCoordinatorFollowsLeadership(t *testing.T) {
	lead, c1, c2 := twoCoordinators(t)
	p := partitionFor(testGroup, testConfig().OffsetsTopicPartitions)

	if co := findCoordinator(c2, testGroup); co.ErrorCode != 0 || co.NodeID != 1 || co.Host != "127.0.0.1" {
		t.Fatalf("FindCoordinator while node 1 leads: %+v", co)
	}
	if code := commitOffset(c1, testGroup, 10); code != 0 {
		t.Fatalf("commit on the leader: code %d", code)
	}
	if st := c1.Stats(); len(st) != 1 || st[0].ID != testGroup {
		t.Fatalf("Stats on the leader = %+v, want %s", st, testGroup)
	}
	if code := commitOffset(c2, testGroup, 99); code != kerr.NotCoordinator.Code {
		t.Fatalf("commit on node 2, not leading: code %d, want NOT_COORDINATOR", code)
	}

	lead.set(p, 2, 2)
	if co := findCoordinator(c1, testGroup); co.ErrorCode != 0 || co.NodeID != 2 || co.Host != "127.0.0.2" {
		t.Fatalf("FindCoordinator after the move: %+v", co)
	}
	if st := c1.Stats(); len(st) != 0 {
		t.Fatalf("Stats on the old leader after the move = %+v, want no groups", st)
	}
	if code, _ := fetchOffset(c1, testGroup); code != kerr.NotCoordinator.Code {
		t.Fatalf("fetch on the old leader: code %d, want NOT_COORDINATOR", code)
	}
	if code, _ := fetchOffset(c2, testGroup); code != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("first fetch on the new leader: code %d, want COORDINATOR_LOAD_IN_PROGRESS", code)
	}
	var got int64
	if code := settled(t, c2, func() (code int16) { code, got = fetchOffset(c2, testGroup); return code }); code != 0 || got != 10 {
		t.Fatalf("fetch on the new leader after loading: code %d offset %d, want 10", code, got)
	}
	if code := commitOffset(c2, testGroup, 20); code != 0 {
		t.Fatalf("commit on the new leader: code %d", code)
	}
	if code := commitOffset(c1, testGroup, 98); code != kerr.NotCoordinator.Code {
		t.Fatalf("commit on the old leader: code %d, want NOT_COORDINATOR", code)
	}

	// Back to node 1 in a later epoch: what it held (offset 10) is stale.
	lead.set(p, 1, 3)
	if code := settled(t, c1, func() (code int16) { code, got = fetchOffset(c1, testGroup); return code }); code != 0 || got != 20 {
		t.Fatalf("fetch on node 1 leading again: code %d offset %d, want 20", code, got)
	}

	lead.set(p, -1, 4)
	if co := findCoordinator(c1, testGroup); co.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("FindCoordinator with no leader: %+v, want COORDINATOR_NOT_AVAILABLE", co)
	}
	if code, _ := fetchOffset(c1, testGroup); code != kerr.NotCoordinator.Code {
		t.Fatalf("fetch with no leader: code %d, want NOT_COORDINATOR", code)
	}
}

// TestNotCoordinatorForEveryGroupRequest checks that every group request
// for a group whose partition this node does not lead answers
// NOT_COORDINATOR without touching state, and ListGroups lists only the
// groups of partitions led here.
func TestNotCoordinatorForEveryGroupRequest(t *testing.T) {
	_, c1, c2 := twoCoordinators(t)
	if code := commitOffset(c1, testGroup, 5); code != 0 {
		t.Fatalf("commit: code %d", code)
	}
	ctx := context.Background()
	nc := kerr.NotCoordinator.Code
	cases := []struct {
		name string
		code func() int16
	}{
		{"JoinGroup", func() int16 {
			req := joinRequest("", nil, "t1")
			return c2.JoinGroup(ctx, req).ErrorCode
		}},
		{"SyncGroup", func() int16 { return c2.SyncGroup(ctx, syncRequest("m", 1, nil, nil)).ErrorCode }},
		{"Heartbeat", func() int16 {
			req := kmsg.NewPtrHeartbeatRequest()
			req.Version, req.Group, req.MemberID, req.Generation = 4, testGroup, "m", 1
			return c2.Heartbeat(ctx, req).ErrorCode
		}},
		{"LeaveGroup", func() int16 {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Version, req.Group = 5, testGroup
			req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
			return c2.LeaveGroup(ctx, req).ErrorCode
		}},
		{"OffsetCommit", func() int16 { return commitOffset(c2, testGroup, 6) }},
		{"OffsetFetch", func() int16 { code, _ := fetchOffset(c2, testGroup); return code }},
		{"OffsetFetchBatched", func() int16 {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version = 8
			req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: testGroup}}
			return c2.OffsetFetch(ctx, req).Groups[0].ErrorCode
		}},
		{"DescribeGroups", func() int16 {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Version, req.Groups = 5, []string{testGroup}
			return c2.DescribeGroups(ctx, req).Groups[0].ErrorCode
		}},
		{"DeleteGroups", func() int16 {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Version, req.Groups = 2, []string{testGroup}
			return c2.DeleteGroups(ctx, req).Groups[0].ErrorCode
		}},
		{"OffsetDelete", func() int16 {
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Version, req.Group = 0, testGroup
			req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t1", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
			return c2.OffsetDelete(ctx, req).ErrorCode
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.code(); got != nc {
				t.Errorf("code %d, want NOT_COORDINATOR (%d)", got, nc)
			}
		})
	}
	if code, got := fetchOffset(c1, testGroup); code != 0 || got != 5 {
		t.Errorf("the leader's offset after the refused requests: code %d offset %d, want 5", code, got)
	}
	list := func(c *Coordinator) []string {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version = 4
		var ids []string
		for _, g := range c.ListGroups(ctx, req).Groups {
			ids = append(ids, g.Group)
		}
		return ids
	}
	if got := list(c1); len(got) != 1 || got[0] != testGroup {
		t.Errorf("ListGroups on the leader = %v, want [%s]", got, testGroup)
	}
	if got := list(c2); len(got) != 0 {
		t.Errorf("ListGroups on node 2 = %v, want none", got)
	}
}

// TestLeadershipLossEndsWaits checks that members of a group whose
// partition moved away hear NOT_COORDINATOR: a heartbeat at once, and a
// member waiting in JoinGroup when the rebalance timer fires.
func TestLeadershipLossEndsWaits(t *testing.T) {
	lead, c1, _ := twoCoordinators(t)
	p := partitionFor(testGroup, testConfig().OffsetsTopicPartitions)
	c1.cfg.InitialRebalanceDelay = 0
	first := c1.JoinGroup(WithClient(context.Background(), "client", "/127.0.0.1"), joinRequest("", nil, "t1"))
	if first.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first join: code %d", first.ErrorCode)
	}
	req := joinRequest(first.MemberID, nil, "t1")
	req.RebalanceTimeoutMillis = 200
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	// A second member id is expected but never joins: the first waits
	// until the rebalance timeout.
	if second := c1.JoinGroup(WithClient(context.Background(), "client", "/127.0.0.1"), joinRequest("", nil, "t1")); second.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("second member's first join: code %d", second.ErrorCode)
	}
	go func() { ch <- c1.JoinGroup(WithClient(context.Background(), "client", "/127.0.0.1"), req) }()
	lead.set(p, 2, 2)
	select {
	case resp := <-ch:
		if resp.ErrorCode != kerr.NotCoordinator.Code {
			t.Fatalf("waiting join after the move: code %d, want NOT_COORDINATOR", resp.ErrorCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting join not answered after the move")
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.Generation = 4, testGroup, first.MemberID, 1
	if code := c1.Heartbeat(context.Background(), hb).ErrorCode; code != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat after the move: code %d, want NOT_COORDINATOR", code)
	}
}
