package consumergroup

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

// testCoordinator opens a real single-node cluster in dir with a topic "t"
// of 4 partitions, and a coordinator with short timeouts.
func testCoordinator(t *testing.T, dir string) (*Coordinator, *replication.Cluster) {
	t.Helper()
	ccfg := replication.DefaultConfig()
	ccfg.DataDir = dir
	cluster, err := replication.Open(ccfg, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cluster.Topic("t"); !ok {
		if _, err := cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "t", Partitions: 4, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.OffsetsTopicPartitions = 3
	cfg.MinSessionTimeout = 50 * time.Millisecond
	cfg.InitialRebalanceDelay = 0
	c, err := New(cluster, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close(context.Background())
		cluster.Close(context.Background())
	})
	return c, cluster
}

func joinReq(group, memberID string, instanceID *string, session time.Duration) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 9
	r.Group, r.MemberID, r.InstanceID = group, memberID, instanceID
	r.SessionTimeoutMillis = int32(session / time.Millisecond)
	r.RebalanceTimeoutMillis = 5000
	r.ProtocolType = "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	return r
}

// join does the two-step join of a dynamic member and returns its answer.
func join(t *testing.T, c *Coordinator, group string, session time.Duration) *kmsg.JoinGroupResponse {
	t.Helper()
	first := c.JoinGroup(context.Background(), joinReq(group, "", nil, session))
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		t.Fatalf("first join: error %d member %q, want MEMBER_ID_REQUIRED with an id", first.ErrorCode, first.MemberID)
	}
	return c.JoinGroup(context.Background(), joinReq(group, first.MemberID, nil, session))
}

func syncReq(group, memberID string, generation int32, assignments map[string][]byte) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group, r.MemberID, r.Generation = group, memberID, generation
	for id, a := range assignments {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return r
}

func heartbeat(c *Coordinator, group, memberID string, generation int32) int16 {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.MemberID, r.Generation = group, memberID, generation
	return c.Heartbeat(context.Background(), r).ErrorCode
}

func TestJavaStringHashCode(t *testing.T) {
	for s, want := range map[string]int32{"": 0, "a": 97, "ab": 3105, "hello": 99162322, "héllo": 103094734} {
		if got := javaStringHashCode(s); got != want {
			t.Errorf("hash(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestPartitionFor checks placement against values computed with Java's
// String.hashCode and Kafka's Utils.abs for 50 partitions (Kafka's
// default): toPositive would put "analytics-group" on 10.
func TestPartitionFor(t *testing.T) {
	for _, tc := range []struct {
		group string
		hash  int32
		want  int32
	}{
		{"", 0, 0},
		{"group", 98629247, 47},
		{"analytics-group", -609982088, 38},
		{"polygenelubricants", -2147483648, 0},
		{"my-consumer-group", 1513705513, 13},
		{"\U0001F600", 1772899, 49}, // a surrogate pair in UTF-16
	} {
		if got := javaStringHashCode(tc.group); got != tc.hash {
			t.Errorf("hash(%q) = %d, want %d", tc.group, got, tc.hash)
		}
		if got := partitionFor(tc.group, 50); got != tc.want {
			t.Errorf("partitionFor(%q, 50) = %d, want %d", tc.group, got, tc.want)
		}
	}
}

func TestTwoMembersRebalanceAndLeave(t *testing.T) {
	c, _ := testCoordinator(t, t.TempDir())
	const g = "g"
	a := join(t, c, g, time.Minute)
	if a.ErrorCode != 0 || a.Generation != 1 || a.LeaderID != a.MemberID || len(a.Members) != 1 {
		t.Fatalf("first member: %+v", a)
	}
	if s := c.SyncGroup(context.Background(), syncReq(g, a.MemberID, 1, map[string][]byte{a.MemberID: []byte("all")})); s.ErrorCode != 0 || string(s.MemberAssignment) != "all" {
		t.Fatalf("sync: %+v", s)
	}

	// A second member joins: the first hears REBALANCE_IN_PROGRESS and
	// rejoins; both land in generation 2 with the first as leader.
	var b *kmsg.JoinGroupResponse
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b = join(t, c, g, time.Minute) }()
	deadline := time.Now().Add(5 * time.Second)
	for heartbeat(c, g, a.MemberID, 1) != kerr.RebalanceInProgress.Code {
		if time.Now().After(deadline) {
			t.Fatal("first member never told of the rebalance")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a2 := c.JoinGroup(context.Background(), joinReq(g, a.MemberID, nil, time.Minute))
	wg.Wait()
	if a2.Generation != 2 || b.Generation != 2 || a2.LeaderID != a.MemberID || len(a2.Members) != 2 || len(b.Members) != 0 {
		t.Fatalf("generation 2: leader %+v follower %+v", a2, b)
	}

	// The follower's sync waits for the leader's.
	done := make(chan *kmsg.SyncGroupResponse)
	go func() { done <- c.SyncGroup(context.Background(), syncReq(g, b.MemberID, 2, nil)) }()
	c.SyncGroup(context.Background(), syncReq(g, a.MemberID, 2, map[string][]byte{a.MemberID: []byte("p0,p1"), b.MemberID: []byte("p2,p3")}))
	if s := <-done; s.ErrorCode != 0 || string(s.MemberAssignment) != "p2,p3" {
		t.Fatalf("follower sync: %+v", s)
	}
	if code := heartbeat(c, g, b.MemberID, 1); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat with an old generation: %d", code)
	}

	// The leader leaves: the follower rejoins alone and leads generation 3.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 5
	leave.Group = g
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: a.MemberID}}
	if r := c.LeaveGroup(context.Background(), leave); r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", r)
	}
	if code := heartbeat(c, g, b.MemberID, 2); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after the leader left: %d", code)
	}
	b3 := c.JoinGroup(context.Background(), joinReq(g, b.MemberID, nil, time.Minute))
	if b3.Generation != 3 || b3.LeaderID != b.MemberID {
		t.Fatalf("generation 3: %+v", b3)
	}
}

func TestSessionExpiry(t *testing.T) {
	c, _ := testCoordinator(t, t.TempDir())
	a := join(t, c, "g", 100*time.Millisecond)
	c.SyncGroup(context.Background(), syncReq("g", a.MemberID, 1, map[string][]byte{a.MemberID: nil}))
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := kmsg.NewPtrDescribeGroupsRequest()
		d.Groups = []string{"g"}
		if r := c.DescribeGroups(context.Background(), d); r.Groups[0].State == "Empty" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("member without heartbeats never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := heartbeat(c, "g", a.MemberID, 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member's heartbeat: %d", code)
	}
}

func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	c, _ := testCoordinator(t, t.TempDir())
	instance := "instance-1"
	first := c.JoinGroup(context.Background(), joinReq("g", "", &instance, time.Minute))
	if first.ErrorCode != 0 || first.Generation != 1 {
		t.Fatalf("static join: %+v", first)
	}
	c.SyncGroup(context.Background(), syncReq("g", first.MemberID, 1, map[string][]byte{first.MemberID: []byte("mine")}))

	// Restart: same instance id, no member id.
	again := c.JoinGroup(context.Background(), joinReq("g", "", &instance, time.Minute))
	if again.ErrorCode != 0 || again.Generation != 1 || again.MemberID == first.MemberID {
		t.Fatalf("static rejoin: %+v (want generation 1 and a new member id)", again)
	}
	s := c.SyncGroup(context.Background(), syncReq("g", again.MemberID, 1, nil))
	if s.ErrorCode != 0 || string(s.MemberAssignment) != "mine" {
		t.Fatalf("static member's assignment after restart: %+v", s)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", first.MemberID, 1, &instance
	if r := c.Heartbeat(context.Background(), hb); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("old member id: %d, want FENCED_INSTANCE_ID", r.ErrorCode)
	}
}

func commitReq(group, memberID string, generation int32, offsets map[int32]int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 9
	r.Group, r.MemberID, r.Generation = group, memberID, generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		meta := "m"
		rp.Partition, rp.Offset, rp.Metadata = p, o, &meta
		rt.Partitions = append(rt.Partitions, rp)
	}
	r.Topics = append(r.Topics, rt)
	return r
}

func fetchOffsets(c *Coordinator, group string) map[int32]int64 {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 9
	r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group}}
	out := map[int32]int64{}
	for _, t := range c.OffsetFetch(context.Background(), r).Groups[0].Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p.Offset
		}
	}
	return out
}

func TestCommitsSurviveRestartAndCrash(t *testing.T) {
	dir := t.TempDir()
	c, cluster := testCoordinator(t, dir)
	a := join(t, c, "g", time.Minute)
	c.SyncGroup(context.Background(), syncReq("g", a.MemberID, 1, map[string][]byte{a.MemberID: nil}))
	if r := c.OffsetCommit(context.Background(), commitReq("g", a.MemberID, 1, map[int32]int64{0: 10, 3: 30})); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %+v", r)
	}
	if r := c.OffsetCommit(context.Background(), commitReq("g", a.MemberID, 7, map[int32]int64{0: 99})); r.Topics[0].Partitions[0].ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("commit with a wrong generation: %+v", r)
	}
	if r := c.OffsetCommit(context.Background(), commitReq("g", "", -1, map[int32]int64{0: 99})); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("admin commit to a group with members: %+v", r)
	}
	if r := c.OffsetCommit(context.Background(), commitReq("simple", "", -1, map[int32]int64{1: 5})); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("admin commit to a new group: %+v", r)
	}

	// Crash: no Close of either, then reopen on the same directory.
	c.mu.Lock()
	c.closed = true // stop its timers touching a reopened cluster
	c.mu.Unlock()
	_ = cluster
	c2, _ := testCoordinatorNoCleanupOf(t, dir, c, cluster)
	if got := fetchOffsets(c2, "g"); got[0] != 10 || got[3] != 30 {
		t.Fatalf("offsets after crash: %v", got)
	}
	if got := fetchOffsets(c2, "simple"); got[1] != 5 {
		t.Fatalf("simple group's offsets after crash: %v", got)
	}
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{"g"}
	if r := c2.DescribeGroups(context.Background(), d).Groups[0]; r.State != "Stable" || len(r.Members) != 1 {
		t.Fatalf("group after crash: %+v", r)
	}
	// The member kept its generation and can go on committing.
	if r := c2.OffsetCommit(context.Background(), commitReq("g", a.MemberID, 1, map[int32]int64{0: 11})); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit after reload: %+v", r)
	}
}

// testCoordinatorNoCleanupOf reopens dir after a simulated crash of c and
// cluster: their files are closed without the clean-shutdown steps.
func testCoordinatorNoCleanupOf(t *testing.T, dir string, c *Coordinator, cluster *replication.Cluster) (*Coordinator, *replication.Cluster) {
	t.Helper()
	// Closing the cluster syncs what is already durable; commits were
	// durable before they were answered, so this models kill -9 for them.
	cluster.Close(context.Background())
	return testCoordinator(t, dir)
}

func TestDeleteAndListGroups(t *testing.T) {
	c, _ := testCoordinator(t, t.TempDir())
	a := join(t, c, "busy", time.Minute)
	c.OffsetCommit(context.Background(), commitReq("idle", "", -1, map[int32]int64{0: 1}))

	l := kmsg.NewPtrListGroupsRequest()
	l.Version = 5
	l.StatesFilter = []string{"empty"}
	r := c.ListGroups(context.Background(), l)
	if len(r.Groups) != 1 || r.Groups[0].Group != "idle" || r.Groups[0].GroupType != "classic" {
		t.Fatalf("list empty groups: %+v", r.Groups)
	}

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"busy", "idle", "missing"}
	codes := map[string]int16{}
	for _, g := range c.DeleteGroups(context.Background(), del).Groups {
		codes[g.Group] = g.ErrorCode
	}
	if codes["busy"] != kerr.NonEmptyGroup.Code || codes["idle"] != 0 || codes["missing"] != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete groups: %v", codes)
	}
	if got := fetchOffsets(c, "idle"); len(got) != 0 {
		t.Fatalf("deleted group's offsets: %v", got)
	}
	_ = a
}

func TestOffsetDeleteRefusesSubscribedTopics(t *testing.T) {
	c, _ := testCoordinator(t, t.TempDir())
	a := join(t, c, "g", time.Minute)
	c.SyncGroup(context.Background(), syncReq("g", a.MemberID, 1, map[string][]byte{a.MemberID: nil}))
	c.OffsetCommit(context.Background(), commitReq("g", a.MemberID, 1, map[int32]int64{0: 1}))
	r := kmsg.NewPtrOffsetDeleteRequest()
	r.Group = "g"
	r.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	if resp := c.OffsetDelete(context.Background(), r); resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("offset delete on a subscribed topic: %+v", resp)
	}
}

func TestFindCoordinator(t *testing.T) {
	c, cluster := testCoordinator(t, t.TempDir())
	r := kmsg.NewPtrFindCoordinatorRequest()
	r.Version = 4
	r.CoordinatorKeys = []string{"a", "b"}
	resp := c.FindCoordinator(context.Background(), r)
	if len(resp.Coordinators) != 2 || resp.Coordinators[0].NodeID != cluster.NodeID() || resp.Coordinators[1].ErrorCode != 0 {
		t.Fatalf("batched: %+v", resp)
	}
	r = kmsg.NewPtrFindCoordinatorRequest()
	r.Version, r.CoordinatorKey, r.CoordinatorType = 2, "txn", 1
	if resp := c.FindCoordinator(context.Background(), r); resp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("transaction coordinator: %+v", resp)
	}
}

func TestJoinValidation(t *testing.T) {
	c, _ := testCoordinator(t, t.TempDir())
	bad := joinReq("g", "", nil, time.Hour)
	if r := c.JoinGroup(context.Background(), bad); r.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("session timeout above max: %d", r.ErrorCode)
	}
	if r := c.JoinGroup(context.Background(), joinReq("", "", nil, time.Minute)); r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("empty group: %d", r.ErrorCode)
	}
	a := join(t, c, "g", time.Minute)
	_ = a
	other := joinReq("g", "", nil, time.Minute)
	other.ProtocolType = "connect"
	if r := c.JoinGroup(context.Background(), other); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("other protocol type: %d", r.ErrorCode)
	}
	if r := c.JoinGroup(context.Background(), joinReq("g", "nobody", nil, time.Minute)); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member id: %d", r.ErrorCode)
	}
}
