package consumergroup

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// assigned returns a heartbeat answer's assignment as "topic-id-byte:partitions".
func assigned(resp *kmsg.ShareGroupHeartbeatResponse) string {
	if resp.Assignment == nil {
		return "none"
	}
	var out []string
	for _, tp := range resp.Assignment.TopicPartitions {
		out = append(out, fmt.Sprint(tp.Partitions))
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

// TestShareHeartbeatStateMachine walks a share group through joins,
// heartbeats with current, previous and stale epochs, a partition count
// change, a leave, a restart of the coordinator and a delete.
func TestShareHeartbeatStateMachine(t *testing.T) {
	h := newHarness(t)
	persister := newMemPersister()
	h.openShareCoordinator(testConfig(), persister)

	code := func(resp *kmsg.ShareGroupHeartbeatResponse, want int16) {
		t.Helper()
		if resp.ErrorCode != want {
			t.Fatalf("error %v, want %v", kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(want))
		}
	}
	code(h.shareHeartbeat("a", 0), kerr.InvalidRequest.Code)
	code(h.shareHeartbeat("", 0, "t1"), kerr.InvalidRequest.Code)
	code(h.shareHeartbeat("a", -2, "t1"), kerr.InvalidRequest.Code)
	code(h.shareHeartbeat("a", 1, "t1"), kerr.GroupIDNotFound.Code)

	a := h.shareHeartbeat("a", 0, "t1")
	code(a, 0)
	if a.MemberEpoch != 1 || assigned(a) != "[[0 1 2]]" || a.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("first join: epoch %d assignment %s interval %d, want 1 [[0 1 2]] 5000", a.MemberEpoch, assigned(a), a.HeartbeatIntervalMillis)
	}
	b := h.shareHeartbeat("b", 0, "t1")
	code(b, 0)
	if b.MemberEpoch != 2 || assigned(b) == "none" {
		t.Fatalf("second join: epoch %d assignment %s", b.MemberEpoch, assigned(b))
	}
	// a learns the new assignment on its next heartbeat.
	a = h.shareHeartbeat("a", 1)
	code(a, 0)
	if a.MemberEpoch != 2 || assigned(a) == "none" || assigned(a) == "[[0 1 2]]" {
		t.Fatalf("a after b joined: epoch %d assignment %s", a.MemberEpoch, assigned(a))
	}
	// The previous epoch is still accepted (the answer may have been
	// lost); nothing changed, so no assignment is sent.
	a = h.shareHeartbeat("a", 1)
	code(a, 0)
	if a.MemberEpoch != 2 || a.Assignment != nil {
		t.Fatalf("a with its previous epoch: epoch %d assignment %s, want 2 none", a.MemberEpoch, assigned(a))
	}
	code(h.shareHeartbeat("a", 7), kerr.FencedMemberEpoch.Code)
	code(h.shareHeartbeat("nobody", 2), kerr.UnknownMemberID.Code)

	d := h.shareDescribe(testShareGroup)
	if d.ErrorCode != 0 || d.GroupState != "Stable" || d.GroupEpoch != 2 || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	covered := map[int32]bool{}
	for _, m := range d.Members {
		for _, tp := range m.Assignment.TopicPartitions {
			if tp.Topic != "t1" {
				t.Errorf("assigned topic %q, want t1", tp.Topic)
			}
			for _, p := range tp.Partitions {
				covered[p] = true
			}
		}
	}
	if len(covered) != 3 {
		t.Errorf("partitions assigned: %v, want all 3 of t1", covered)
	}

	// More partitions: the next heartbeat bumps the epoch and assigns
	// them.
	if err := h.cl.CreatePartitions(context.Background(), "t1", 4, false); err != nil {
		t.Fatal(err)
	}
	a = h.shareHeartbeat("a", 2)
	code(a, 0)
	if a.MemberEpoch != 3 {
		t.Fatalf("after adding a partition: epoch %d, want 3", a.MemberEpoch)
	}

	// A classic group's API on the share group's id, and the reverse.
	join := joinRequest("", nil, "t1")
	join.Group = testShareGroup
	if r := <-h.join(join); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("JoinGroup on a share group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(r.ErrorCode))
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.Generation = 8, testGroup, -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "t1"
	ct.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}
	commit.Topics = []kmsg.OffsetCommitRequestTopic{ct}
	if r := h.c.OffsetCommit(context.Background(), commit); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit for a classic group: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	commit.Group = testShareGroup
	if r := h.c.OffsetCommit(context.Background(), commit); r.Topics[0].Partitions[0].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("commit for a share group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.Version, req.GroupID, req.MemberID, req.SubscribedTopicNames = 1, testGroup, "x", []string{"t1"}
	if r := h.c.ShareGroupHeartbeat(context.Background(), req); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("share heartbeat on a classic group: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(r.ErrorCode))
	}

	// ListGroups: the type filter.
	list := func(types ...string) map[string]string {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version, req.TypesFilter = 5, types
		got := map[string]string{}
		for _, g := range h.c.ListGroups(context.Background(), req).Groups {
			got[g.Group] = g.GroupType + "/" + g.GroupState
		}
		return got
	}
	if got := list("share"); len(got) != 1 || got[testShareGroup] != "share/Stable" {
		t.Errorf("share groups listed: %v", got)
	}
	if got := list(); len(got) != 2 {
		t.Errorf("all groups listed: %v, want the classic and the share group", got)
	}

	// A restart keeps the group and its epoch; members join again.
	h.restart()
	h.openShareCoordinator(testConfig(), persister)
	if got := list("share"); got[testShareGroup] != "share/Empty" {
		t.Fatalf("after restart: %v, want the share group, Empty", got)
	}
	code(h.shareHeartbeat("a", 3), kerr.UnknownMemberID.Code)
	a = h.shareHeartbeat("a", 0, "t1")
	code(a, 0)
	if a.MemberEpoch != 4 || assigned(a) != "[[0 1 2 3]]" {
		t.Fatalf("rejoin after restart: epoch %d assignment %s, want 4 [[0 1 2 3]]", a.MemberEpoch, assigned(a))
	}

	// Deleting needs the group empty; it deletes the share-partition
	// states of every partition ever assigned.
	del := func() int16 {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version, req.Groups = 2, []string{testShareGroup}
		return h.c.DeleteGroups(context.Background(), req).Groups[0].ErrorCode
	}
	if c := del(); c != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete with a member: %v", kerr.ErrorForCode(c))
	}
	a = h.shareHeartbeat("a", 4, "t1")
	leave := h.shareHeartbeat("a", -1)
	code(leave, 0)
	if leave.MemberEpoch != -1 {
		t.Fatalf("leave: epoch %d, want -1", leave.MemberEpoch)
	}
	if c := del(); c != 0 {
		t.Fatalf("delete: %v", kerr.ErrorForCode(c))
	}
	if len(persister.deleted) != 4 {
		t.Errorf("states deleted: %v, want the 4 partitions of t1", persister.deleted)
	}
	if d := h.shareDescribe(testShareGroup); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("describe after delete: %v", kerr.ErrorForCode(d.ErrorCode))
	}
	h.restart()
	if got := list("share"); len(got) != 0 {
		t.Errorf("after delete and restart: %v, want no share group", got)
	}
}

// TestShareSessionExpiry checks that a member that stops heartbeating is
// removed after the session timeout and its partitions go to the others.
func TestShareSessionExpiry(t *testing.T) {
	h := newHarness(t)
	cfg := testConfig()
	cfg.ShareSessionTimeout, cfg.ShareHeartbeatInterval = 300*time.Millisecond, 100*time.Millisecond
	h.openShareCoordinator(cfg, nil)
	if r := h.shareHeartbeat("a", 0, "t1"); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	b := h.shareHeartbeat("b", 0, "t1")
	if b.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(b.ErrorCode))
	}
	// b keeps heartbeating; a does not.
	epoch := b.MemberEpoch
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := h.shareHeartbeat("b", epoch)
		if r.ErrorCode != 0 {
			t.Fatalf("b heartbeat: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		epoch = r.MemberEpoch
		if r.Assignment != nil && assigned(r) == "[[0 1 2]]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never got every partition: %s, members %d", assigned(r), len(h.shareDescribe(testShareGroup).Members))
		}
		time.Sleep(50 * time.Millisecond) // b's heartbeat interval
	}
	if d := h.shareDescribe(testShareGroup); len(d.Members) != 1 || d.Members[0].MemberID != "b" {
		t.Errorf("members after a's expiry: %+v", d.Members)
	}
}

// TestShareGroupFollowsLeadership moves the leadership of a share group's
// __consumer_offsets partition from node 1 to node 2: node 1 answers
// NOT_COORDINATOR and forgets the group, node 2 loads it with its epoch
// (no members: they join again), and the member joins it there.
func TestShareGroupFollowsLeadership(t *testing.T) {
	lead, c1, c2 := twoCoordinators(t)
	ctx := WithClient(context.Background(), "worker", "/127.0.0.1")
	heartbeat := func(c *Coordinator, member string, epoch int32, topics ...string) *kmsg.ShareGroupHeartbeatResponse {
		req := kmsg.NewPtrShareGroupHeartbeatRequest()
		req.Version, req.GroupID, req.MemberID, req.MemberEpoch = 1, testShareGroup, member, epoch
		if topics != nil {
			req.SubscribedTopicNames = topics
		}
		return c.ShareGroupHeartbeat(ctx, req)
	}
	var r *kmsg.ShareGroupHeartbeatResponse
	settled(t, c1, func() int16 { r = heartbeat(c1, "a", 0, "t1"); return r.ErrorCode })
	if r.ErrorCode != 0 || r.MemberEpoch != 1 {
		t.Fatalf("join on node 1: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	if r := heartbeat(c2, "a", 1); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat on node 2 before the move: %v, want NOT_COORDINATOR", kerr.ErrorForCode(r.ErrorCode))
	}

	p := partitionFor(testShareGroup, testConfig().OffsetsTopicPartitions)
	lead.set(p, 2, 2)
	if r := heartbeat(c1, "a", 1); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat on node 1 after the move: %v, want NOT_COORDINATOR", kerr.ErrorForCode(r.ErrorCode))
	}
	c1.mu.Lock()
	kept := c1.shareGroups[testShareGroup] != nil
	c1.mu.Unlock()
	if kept {
		t.Error("node 1 still holds the share group after losing its partition")
	}
	settled(t, c2, func() int16 { r = heartbeat(c2, "a", 1); return r.ErrorCode })
	if r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat on node 2 after the move: %v, want UNKNOWN_MEMBER_ID (members join again)", kerr.ErrorForCode(r.ErrorCode))
	}
	r = heartbeat(c2, "a", 0, "t1")
	if r.ErrorCode != 0 || r.MemberEpoch != 2 || assigned(r) != "[[0 1 2]]" {
		t.Fatalf("rejoin on node 2: %v epoch %d assignment %s, want epoch 2 (after the stored 1) and every partition", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch, assigned(r))
	}
}

// TestShareGroupMembershipChanges covers a subscription change, a topic
// deleted under a subscription and the group size limit.
func TestShareGroupMembershipChanges(t *testing.T) {
	h := newHarness(t)
	cfg := testConfig()
	cfg.ShareMaxSize = 2
	h.openShareCoordinator(cfg, nil)
	a := h.shareHeartbeat("a", 0, "t1", "t2")
	b := h.shareHeartbeat("b", 0, "t1")
	if a.ErrorCode != 0 || b.ErrorCode != 0 {
		t.Fatalf("joins: %v %v", kerr.ErrorForCode(a.ErrorCode), kerr.ErrorForCode(b.ErrorCode))
	}
	if r := h.shareHeartbeat("c", 0, "t1"); r.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("third member with group.share.max.size 2: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	t2, _ := h.cl.Topic("t2")
	topicsOf := func(r *kmsg.ShareGroupHeartbeatResponse) map[[16]byte][]int32 {
		out := map[[16]byte][]int32{}
		if r.Assignment != nil {
			for _, tp := range r.Assignment.TopicPartitions {
				out[tp.TopicID] = tp.Partitions
			}
		}
		return out
	}
	a = h.shareHeartbeat("a", a.MemberEpoch)
	if got := topicsOf(a)[t2.ID()]; len(got) != 2 {
		t.Fatalf("a's t2 partitions: %v, want both (only a subscribes)", got)
	}
	// b subscribes to t2 too: the epoch moves and t2 is shared.
	epoch := a.MemberEpoch
	b = h.shareHeartbeat("b", b.MemberEpoch, "t1", "t2")
	if b.MemberEpoch != epoch+1 || len(topicsOf(b)[t2.ID()]) != 1 {
		t.Fatalf("b after subscribing to t2: epoch %d (want %d), t2 %v (want one partition)", b.MemberEpoch, epoch+1, topicsOf(b)[t2.ID()])
	}
	// t2 is deleted: the next heartbeat drops it from the assignment.
	if err := h.cl.DeleteTopic(context.Background(), "t2"); err != nil {
		t.Fatal(err)
	}
	b = h.shareHeartbeat("b", b.MemberEpoch, "t1", "t2")
	if b.ErrorCode != 0 || len(topicsOf(b)[t2.ID()]) != 0 || len(topicsOf(b)) != 1 {
		t.Fatalf("b after t2 was deleted: %v %v", kerr.ErrorForCode(b.ErrorCode), topicsOf(b))
	}
}
