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
