package consumergroup

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commit commits one offset with metadata "m<offset>".
func (h *harness) commit(memberID string, generation int32, topic string, partition int32, offset int64) *kmsg.OffsetCommitResponse {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group = testGroup
	req.MemberID = memberID
	req.Generation = generation
	md := "m" + string(rune('0'+offset%10))
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: partition, Offset: offset, LeaderEpoch: 7, Metadata: &md}}}}
	return h.c.OffsetCommit(context.Background(), req)
}

// fetch returns the committed offsets of the test group (v8); nil topics
// ask for all.
func (h *harness) fetch(topics map[string][]int32) kmsg.OffsetFetchResponseGroup {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	rg := kmsg.OffsetFetchRequestGroup{Group: testGroup}
	if topics != nil {
		rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{}
		for _, name := range sortedKeys(topics) {
			rg.Topics = append(rg.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: name, Partitions: topics[name]})
		}
	}
	req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	return h.c.OffsetFetch(context.Background(), req).Groups[0]
}

// offsets flattens a fetch into "topic/partition" -> offset.
func offsets(g kmsg.OffsetFetchResponseGroup) map[string]int64 {
	out := make(map[string]int64)
	for _, t := range g.Topics {
		for _, p := range t.Partitions {
			out[t.Topic+"/"+string(rune('0'+p.Partition))] = p.Offset
		}
	}
	return out
}

func TestCommitFetchRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(2)
		if r := h.commit(g.members[0], g.generation, "t1", 0, 42); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit: %+v", r)
		}
		if r := h.commit(g.members[1], g.generation, "t1", 2, 7); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit: %+v", r)
		}
		// A later commit of the same partition wins.
		if r := h.commit(g.members[1], g.generation, "t1", 2, 9); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit: %+v", r)
		}

		got := h.fetch(map[string][]int32{"t1": {0, 1, 2}, "nope": {0}})
		if got.ErrorCode != 0 {
			t.Fatalf("fetch error %d", got.ErrorCode)
		}
		want := map[string]int64{"nope/0": -1, "t1/0": 42, "t1/1": -1, "t1/2": 9}
		if o := offsets(got); !equalMaps(o, want) {
			t.Fatalf("fetch %v, want %v", o, want)
		}
		p := got.Topics[1].Partitions[0]
		if p.LeaderEpoch != 7 || *p.Metadata != "m2" {
			t.Fatalf("t1/0: epoch %d metadata %q", p.LeaderEpoch, *p.Metadata)
		}
		if p := got.Topics[1].Partitions[1]; p.LeaderEpoch != -1 || *p.Metadata != "" || p.ErrorCode != 0 {
			t.Fatalf("t1/1 (no commit): %+v", p)
		}
		if o := offsets(h.fetch(nil)); !equalMaps(o, map[string]int64{"t1/0": 42, "t1/2": 9}) {
			t.Fatalf("fetch all: %v", o)
		}

		// v1 (single group, errors per partition) and v7 RequireStable.
		for _, version := range []int16{1, 5, 7} {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Version = version
			req.Group = testGroup
			req.RequireStable = true
			req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t1", Partitions: []int32{0}}}
			resp := h.c.OffsetFetch(context.Background(), req)
			if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].Offset != 42 {
				t.Fatalf("v%d fetch: %+v", version, resp)
			}
		}
		// Unknown groups have no offsets and no error.
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 8
		req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "unknown", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t1", Partitions: []int32{0}}}}}
		if resp := h.c.OffsetFetch(context.Background(), req).Groups[0]; resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].Offset != -1 {
			t.Fatalf("unknown group: %+v", resp)
		}
	})
}

func TestCommitValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(1)
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = 8
		req.Group = testGroup
		req.MemberID = g.members[0]
		req.Generation = g.generation
		long := strings.Repeat("x", 4097)
		req.Topics = []kmsg.OffsetCommitRequestTopic{
			{Topic: "t1", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}, {Partition: 3, Offset: 1}, {Partition: 1, Offset: 1, Metadata: &long}}},
			{Topic: "missing", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}},
		}
		resp := h.c.OffsetCommit(context.Background(), req)
		got := []int16{resp.Topics[0].Partitions[0].ErrorCode, resp.Topics[0].Partitions[1].ErrorCode, resp.Topics[0].Partitions[2].ErrorCode, resp.Topics[1].Partitions[0].ErrorCode}
		want := []int16{0, kerr.UnknownTopicOrPartition.Code, kerr.OffsetMetadataTooLarge.Code, kerr.UnknownTopicOrPartition.Code}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("errors %v, want %v", got, want)
			}
		}

		// Commits are refused while the group completes a rebalance, and
		// accepted while it prepares one.
		ch := h.join(joinRequest(g.members[0], nil, "t1", "t2"))
		r := <-ch
		if c := h.commit(g.members[0], r.Generation, "t1", 0, 5).Topics[0].Partitions[0].ErrorCode; c != kerr.RebalanceInProgress.Code {
			t.Fatalf("commit in CompletingRebalance: %d", c)
		}
		newID := h.memberID()
		joining := h.join(joinRequest(newID, nil, "t1"))
		synctest.Wait()
		if d := h.describe(); d.State != "PreparingRebalance" {
			t.Fatalf("state %s", d.State)
		}
		if c := h.commit(g.members[0], r.Generation, "t1", 0, 6).Topics[0].Partitions[0].ErrorCode; c != 0 {
			t.Fatalf("commit in PreparingRebalance: %d", c)
		}
		<-h.join(joinRequest(g.members[0], nil, "t1", "t2"))
		<-joining
	})
}

func TestAdminCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		// To a group that does not exist: it is created Empty.
		if r := h.commit("", -1, "t1", 1, 100); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("admin commit: %+v", r)
		}
		if d := h.describe(); d.State != "Empty" || d.ProtocolType != "" {
			t.Fatalf("describe: %+v", d)
		}
		if o := offsets(h.fetch(nil)); !equalMaps(o, map[string]int64{"t1/1": 100}) {
			t.Fatalf("offsets %v", o)
		}
		// A member id of an unknown group commits nothing.
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = 8
		req.Group = "other"
		req.MemberID = "ghost"
		req.Generation = 3
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t1", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
		if c := h.c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode; c != kerr.IllegalGeneration.Code {
			t.Fatalf("member commit to unknown group: %d", c)
		}
		req.Generation = -1
		if c := h.c.OffsetCommit(context.Background(), req).Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownMemberID.Code {
			t.Fatalf("member id without generation to unknown group: %d", c)
		}
		list := h.c.ListGroups(context.Background(), kmsg.NewPtrListGroupsRequest())
		if len(list.Groups) != 1 || list.Groups[0].Group != testGroup {
			t.Fatalf("groups: %+v", list.Groups)
		}
		// The group with offsets accepts members; then admin commits stop.
		g := h.formGroup(1)
		if c := h.commit("", -1, "t1", 1, 5).Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownMemberID.Code {
			t.Fatalf("admin commit to a group with members: %d", c)
		}
		if o := offsets(h.fetch(nil)); o["t1/1"] != 100 {
			t.Fatalf("offsets %v", o)
		}
		_ = g
	})
}

func TestOffsetsSurviveRestartAndCrash(t *testing.T) {
	for _, how := range []string{"restart", "crash"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t)
				g := h.formGroup(2, "alpha")
				for i, m := range g.members {
					if r := h.commit(m, g.generation, "t1", int32(i), int64(10+i)); r.Topics[0].Partitions[0].ErrorCode != 0 {
						t.Fatalf("commit: %+v", r)
					}
				}
				// A deleted offset stays deleted.
				h.commit("", -1, "t2", 0, 1) // refused: the group has members
				if how == "restart" {
					h.restart()
				} else {
					h.crash()
				}
				if o := offsets(h.fetch(nil)); !equalMaps(o, map[string]int64{"t1/0": 10, "t1/1": 11}) {
					t.Fatalf("offsets after %s: %v", how, o)
				}
				d := h.describe()
				if d.State != "Stable" || len(d.Members) != 2 {
					t.Fatalf("group after %s: %+v", how, d)
				}
				for _, m := range d.Members {
					if (m.InstanceID != nil) != (string(m.MemberAssignment) == "a") || (m.InstanceID != nil && *m.InstanceID != "alpha") {
						t.Fatalf("member after %s: %+v", how, m)
					}
				}
				// The generation goes on: members heartbeat as before.
				if code := h.heartbeat(g.members[1], g.generation, nil); code != 0 {
					t.Fatalf("heartbeat after %s: %d", how, code)
				}
				// The static member restarts and keeps its assignment.
				r := <-h.join(joinRequest("", ptr("alpha"), "t1"))
				if r.ErrorCode != 0 || r.Generation != g.generation {
					t.Fatalf("static rejoin after %s: %+v", how, r)
				}
				if s := <-h.sync(syncRequest(r.MemberID, g.generation, ptr("alpha"), nil)); s.ErrorCode != 0 || string(s.MemberAssignment) != "a" {
					t.Fatalf("sync: %+v", s)
				}
				// Members that do not come back expire and the group empties.
				time.Sleep(11 * time.Second)
				if d := h.describe(); d.State != "Empty" {
					t.Fatalf("state after sessions ended: %s", d.State)
				}
			})
		})
	}
}

func TestDeleteGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(1)
		h.commit(g.members[0], g.generation, "t1", 0, 3)
		del := func(groups ...string) []int16 {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Version = 2
			req.Groups = groups
			var codes []int16
			for _, sg := range h.c.DeleteGroups(context.Background(), req).Groups {
				codes = append(codes, sg.ErrorCode)
			}
			return codes
		}
		if got := del(testGroup, "unknown"); got[0] != kerr.NonEmptyGroup.Code || got[1] != kerr.GroupIDNotFound.Code {
			t.Fatalf("delete: %v", got)
		}
		h.leave(kmsg.LeaveGroupRequestMember{MemberID: g.members[0]})
		if d := h.describe(); d.State != "Empty" {
			t.Fatalf("state %s", d.State)
		}
		if got := del(testGroup); got[0] != 0 {
			t.Fatalf("delete empty group: %v", got)
		}
		if got := del(testGroup); got[0] != kerr.GroupIDNotFound.Code {
			t.Fatalf("delete again: %v", got)
		}
		if o := offsets(h.fetch(map[string][]int32{"t1": {0}})); o["t1/0"] != -1 {
			t.Fatalf("offsets after delete: %v", o)
		}
		h.restart()
		if d := h.describe(); d.State != "Dead" {
			t.Fatalf("deleted group after restart: %+v", d)
		}
		if o := offsets(h.fetch(nil)); len(o) != 0 {
			t.Fatalf("offsets after restart: %v", o)
		}
	})
}

func TestOffsetDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(1) // subscribes to t1
		for _, topic := range []string{"t1", "t2"} {
			h.commit(g.members[0], g.generation, topic, 0, 5)
		}
		del := func(topics ...string) *kmsg.OffsetDeleteResponse {
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Group = testGroup
			for _, topic := range topics {
				req.Topics = append(req.Topics, kmsg.OffsetDeleteRequestTopic{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}})
			}
			return h.c.OffsetDelete(context.Background(), req)
		}
		resp := del("t1", "t2", "missing")
		if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code ||
			resp.Topics[1].Partitions[0].ErrorCode != 0 || resp.Topics[2].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("offset delete: %+v", resp)
		}
		if o := offsets(h.fetch(nil)); !equalMaps(o, map[string]int64{"t1/0": 5}) {
			t.Fatalf("offsets: %v", o)
		}
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = "unknown"
		if c := h.c.OffsetDelete(context.Background(), req).ErrorCode; c != kerr.GroupIDNotFound.Code {
			t.Fatalf("unknown group: %d", c)
		}
		h.leave(kmsg.LeaveGroupRequestMember{MemberID: g.members[0]})
		if resp := del("t1"); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("offset delete in empty group: %+v", resp)
		}
		h.restart()
		if o := offsets(h.fetch(nil)); len(o) != 0 {
			t.Fatalf("offsets after restart: %v", o)
		}
	})
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestConcurrentCommitsMatchTheLog commits one partition from many
// goroutines at once: whatever commit wins in memory must be the one a
// reload finds, the last record in the log.
func TestConcurrentCommitsMatchTheLog(t *testing.T) {
	h := newHarness(t)
	done := make(chan struct{})
	for i := range 50 {
		go func() {
			defer func() { done <- struct{}{} }()
			if r := h.commit("", -1, "t1", 0, int64(i)); r.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Errorf("commit %d: %+v", i, r)
			}
		}()
	}
	for range 50 {
		<-done
	}
	before := offsets(h.fetch(nil))
	h.restart()
	if after := offsets(h.fetch(nil)); !equalMaps(before, after) {
		t.Fatalf("offsets %v before restart, %v after", before, after)
	}
}
