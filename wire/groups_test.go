package wire

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

// fakeGroups is a GroupCoordinator whose JoinGroup blocks until released
// and which records what reached it.
type fakeGroups struct {
	mu         sync.Mutex
	commits    []*kmsg.OffsetCommitRequest
	txnCommits []*kmsg.TxnOffsetCommitRequest
	txnGuards  []uint64      // the guard of each of txnCommits
	heartbeat  chan struct{} // receives on each Heartbeat
	release    chan struct{} // JoinGroup returns once closed
	joining    chan struct{} // if set, receives when a JoinGroup starts waiting
}

func (f *fakeGroups) FindCoordinator(_ context.Context, req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	return req.ResponseKind().(*kmsg.FindCoordinatorResponse)
}

func (f *fakeGroups) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	if f.joining != nil {
		f.joining <- struct{}{}
	}
	select {
	case <-f.release:
		resp.MemberID = "m"
	case <-ctx.Done():
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	}
	return resp
}

func (f *fakeGroups) SyncGroup(_ context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	return req.ResponseKind().(*kmsg.SyncGroupResponse)
}

func (f *fakeGroups) Heartbeat(_ context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	f.heartbeat <- struct{}{}
	return req.ResponseKind().(*kmsg.HeartbeatResponse)
}

func (f *fakeGroups) LeaveGroup(_ context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	return req.ResponseKind().(*kmsg.LeaveGroupResponse)
}

func (f *fakeGroups) OffsetCommit(_ context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	f.mu.Lock()
	f.commits = append(f.commits, req)
	f.mu.Unlock()
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (f *fakeGroups) OffsetFetch(_ context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	return req.ResponseKind().(*kmsg.OffsetFetchResponse)
}

func (f *fakeGroups) OffsetDelete(_ context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	return req.ResponseKind().(*kmsg.OffsetDeleteResponse)
}

func (f *fakeGroups) ListGroups(_ context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	return req.ResponseKind().(*kmsg.ListGroupsResponse)
}

func (f *fakeGroups) DescribeGroups(_ context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	return req.ResponseKind().(*kmsg.DescribeGroupsResponse)
}

func (f *fakeGroups) DeleteGroups(_ context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	return req.ResponseKind().(*kmsg.DeleteGroupsResponse)
}

func (f *fakeGroups) TxnOffsetCommit(_ context.Context, req *kmsg.TxnOffsetCommitRequest, guard uint64) *kmsg.TxnOffsetCommitResponse {
	f.mu.Lock()
	f.txnCommits = append(f.txnCommits, req)
	f.txnGuards = append(f.txnGuards, guard)
	f.mu.Unlock()
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (f *fakeGroups) CompleteTransaction(int32, int64, int16, bool) {}

// newGroupTestServer is newTestServer with a group coordinator.
func newGroupTestServer(t *testing.T, groups GroupCoordinator) (string, *replication.Cluster) {
	t.Helper()
	return newTestServerWith(t, Options{Groups: groups})
}

// TestBlockingJoinDoesNotBlockReader pipelines a JoinGroup that blocks and
// a Heartbeat: the heartbeat reaches the coordinator while the join waits,
// and the responses still leave in request order.
func TestBlockingJoinDoesNotBlockReader(t *testing.T) {
	f := &fakeGroups{heartbeat: make(chan struct{}, 1), release: make(chan struct{})}
	addr, _ := newGroupTestServer(t, f)
	c := dial(t, addr)
	join := kmsg.NewPtrJoinGroupRequest()
	join.SetVersion(9)
	join.Group = "g"
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.SetVersion(4)
	hb.Group = "g"
	c.send(join, 1)
	c.send(hb, 2)
	select {
	case <-f.heartbeat:
	case <-time.After(5 * time.Second):
		t.Fatal("heartbeat did not reach the coordinator while JoinGroup blocked")
	}
	close(f.release)
	if r := c.receive(join, 1, 9).(*kmsg.JoinGroupResponse); r.MemberID != "m" {
		t.Errorf("join response %+v", r)
	}
	c.receive(hb, 2, 4)
}

// TestOffsetCommitUnknownPartitions checks that partitions the cluster
// does not have are answered UNKNOWN_TOPIC_OR_PARTITION by wire and never
// reach the coordinator.
func TestOffsetCommitUnknownPartitions(t *testing.T) {
	f := &fakeGroups{heartbeat: make(chan struct{}, 1), release: make(chan struct{})}
	addr, cluster := newGroupTestServer(t, f)
	if _, err := cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	commit := func(topics map[string][]int32) *kmsg.OffsetCommitResponse {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.SetVersion(9)
		req.Group = "g"
		for _, name := range []string{"t", "missing"} {
			if ps, ok := topics[name]; ok {
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = name
				for _, p := range ps {
					rp := kmsg.NewOffsetCommitRequestTopicPartition()
					rp.Partition = p
					rt.Partitions = append(rt.Partitions, rp)
				}
				req.Topics = append(req.Topics, rt)
			}
		}
		return c.roundTrip(req).(*kmsg.OffsetCommitResponse)
	}
	codes := func(r *kmsg.OffsetCommitResponse) map[string]int16 {
		m := map[string]int16{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				m[t.Topic+"/"+string(rune('0'+p.Partition))] = p.ErrorCode
			}
		}
		return m
	}
	got := codes(commit(map[string][]int32{"t": {0, 1}, "missing": {0}}))
	want := map[string]int16{"t/0": 0, "t/1": kerr.UnknownTopicOrPartition.Code, "missing/0": kerr.UnknownTopicOrPartition.Code}
	for k, v := range want {
		if got[k] != v || len(got) != len(want) {
			t.Errorf("codes %v, want %v", got, want)
			break
		}
	}
	got = codes(commit(map[string][]int32{"missing": {0}}))
	if len(got) != 1 || got["missing/0"] != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("only unknown: codes %v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.commits) != 1 || len(f.commits[0].Topics) != 1 || f.commits[0].Topics[0].Topic != "t" || len(f.commits[0].Topics[0].Partitions) != 1 {
		t.Errorf("the coordinator saw %d commits: %+v", len(f.commits), f.commits)
	}
}

// TestTxnOffsetCommitUnknownPartitions is TestOffsetCommitUnknownPartitions
// for TxnOffsetCommit: unknown partitions are answered by wire, the rest
// reach the coordinator with the producer and the verification guard of
// the group's partition once the transaction coordinator has verified it.
func TestTxnOffsetCommitUnknownPartitions(t *testing.T) {
	f := &fakeGroups{heartbeat: make(chan struct{}, 1), release: make(chan struct{})}
	addr, cluster := newTestServerWith(t, Options{Groups: f, Transactions: &fakeTxns{}})
	for _, topic := range []string{"t", groupsTopic} {
		if _, err := cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: topic, Partitions: 1, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		p, err := cluster.Partition(groupsTopic, 0)
		if err != nil {
			return false
		}
		node, _ := p.Leader()
		return node == cluster.NodeID()
	})
	c := dial(t, addr)
	for _, v := range []int16{0, 4} {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.SetVersion(v)
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = "tx", "g", 7, 1
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{
			{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}, {Partition: 1, Offset: 5}}},
			{Topic: "missing", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}},
		}
		resp := c.roundTrip(req).(*kmsg.TxnOffsetCommitResponse)
		got := map[string]int16{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				got[rt.Topic+"/"+string(rune('0'+rp.Partition))] = rp.ErrorCode
			}
		}
		want := map[string]int16{"t/0": 0, "t/1": kerr.UnknownTopicOrPartition.Code, "missing/0": kerr.UnknownTopicOrPartition.Code}
		if len(got) != len(want) || got["t/0"] != 0 || got["t/1"] != want["t/1"] || got["missing/0"] != want["missing/0"] {
			t.Errorf("v%d: codes %v, want %v", v, got, want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.txnCommits) != 2 {
		t.Fatalf("the coordinator saw %d transactional commits, want 2", len(f.txnCommits))
	}
	for i, r := range f.txnCommits {
		if r.ProducerID != 7 || r.ProducerEpoch != 1 || len(r.Topics) != 1 || r.Topics[0].Topic != "t" || len(r.Topics[0].Partitions) != 1 {
			t.Errorf("the coordinator saw %+v", r)
		}
		if f.txnGuards[i] == 0 {
			t.Errorf("commit %d reached the coordinator without a verification guard", i)
		}
	}
}

// TestOffsetForLeaderEpochFencing checks CurrentLeaderEpoch fencing and
// the answers for the current and a future epoch.
func TestOffsetForLeaderEpochFencing(t *testing.T) {
	addr, cluster := newTestServer(t)
	if _, err := cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	// The leader epoch is the partition's Raft term (at least 1).
	p, err := cluster.Partition("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	e := p.LeaderEpoch()
	if e < 1 {
		t.Fatalf("leader epoch %d of a led partition", e)
	}
	c := dial(t, addr)
	for _, tc := range []struct {
		name           string
		current, epoch int32
		code           int16
		wantEpoch      int32
		wantEnd        int64
	}{
		{"current epoch", -1, e, 0, e, 0},
		{"matching current", e, e, 0, e, 0},
		{"future epoch", -1, e + 1, 0, -1, -1},
		{"fenced", e - 1, e, kerr.FencedLeaderEpoch.Code, -1, -1},
		{"unknown", e + 1, e, kerr.UnknownLeaderEpoch.Code, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.SetVersion(4)
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = 0, tc.current, tc.epoch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			sp := c.roundTrip(req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
			if sp.ErrorCode != tc.code || sp.LeaderEpoch != tc.wantEpoch || sp.EndOffset != tc.wantEnd {
				t.Errorf("got code %d epoch %d end %d, want %d %d %d", sp.ErrorCode, sp.LeaderEpoch, sp.EndOffset, tc.code, tc.wantEpoch, tc.wantEnd)
			}
		})
	}
}

// TestShutdownEndsGroupWaits checks that a JoinGroup waiting for a
// rebalance does not hold Shutdown up: like a long poll, it is answered as
// soon as shutdown starts, so Shutdown finishes cleanly well before its
// deadline.
func TestShutdownEndsGroupWaits(t *testing.T) {
	groups := &fakeGroups{release: make(chan struct{}), joining: make(chan struct{}, 1)} // never released
	ts := startTestServer(t, Options{Groups: groups})

	c := dial(t, ts.addr)
	join := kmsg.NewPtrJoinGroupRequest()
	join.SetVersion(9)
	join.Group, join.ProtocolType = "g", "consumer"
	c.send(join, 1)
	// The join is waiting once the coordinator has it.
	select {
	case <-groups.joining:
	case <-time.After(10 * time.Second):
		t.Fatal("the JoinGroup did not reach the coordinator")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	if err := ts.stop(ctx); err != nil {
		t.Fatalf("with a JoinGroup waiting: %v after %s", err, time.Since(began))
	}
	if r := c.receive(join, 1, 9).(*kmsg.JoinGroupResponse); r.ErrorCode != kerr.RebalanceInProgress.Code {
		t.Fatalf("waiting join answered with %d, want REBALANCE_IN_PROGRESS", r.ErrorCode)
	}
}
