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

func TestTwoStepJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		id := h.memberID()
		if !strings.HasPrefix(id, "client-") || len(id) != len("client-")+36 {
			t.Fatalf("member id %q, want client-<uuid>", id)
		}
		if d := h.describe(); d.State != "Empty" || len(d.Members) != 0 {
			t.Fatalf("after first step: state %s members %d", d.State, len(d.Members))
		}
		start := time.Now()
		resp := <-h.join(joinRequest(id, nil, "t1"))
		if resp.ErrorCode != 0 || resp.MemberID != id || resp.LeaderID != id || resp.Generation != 1 {
			t.Fatalf("join: %+v", resp)
		}
		if waited := time.Since(start); waited != 3*time.Second {
			t.Fatalf("first rebalance took %s, want the initial delay of 3s", waited)
		}
		if *resp.Protocol != "cooperative-sticky" || *resp.ProtocolType != "consumer" || resp.SkipAssignment {
			t.Fatalf("protocol %q type %q skip %v", *resp.Protocol, *resp.ProtocolType, resp.SkipAssignment)
		}
		if len(resp.Members) != 1 || string(resp.Members[0].ProtocolMetadata) != string(subscription("t1")) {
			t.Fatalf("leader members %+v", resp.Members)
		}

		// Before v4 there is no second step.
		old := joinRequest("", nil, "t1")
		old.Version = 3
		resp = <-h.join(old)
		if resp.ErrorCode != 0 || resp.MemberID == "" || resp.Generation != 2 {
			t.Fatalf("v3 join: %+v", resp)
		}
		// The pending id expires with its session when never used.
		pending := h.memberID()
		time.Sleep(11 * time.Second)
		if resp := <-h.join(joinRequest(pending, nil, "t1")); resp.ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("join with expired pending id: error %d", resp.ErrorCode)
		}
	})
}

func TestScriptJoinValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		for _, tc := range []struct {
			name string
			edit func(*kmsg.JoinGroupRequest)
			want *kerr.Error
		}{
			{"empty group", func(r *kmsg.JoinGroupRequest) { r.Group = "" }, kerr.InvalidGroupID},
			{"session too short", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 100 }, kerr.InvalidSessionTimeout},
			{"session too long", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 31 * 60 * 1000 }, kerr.InvalidSessionTimeout},
			{"no protocols", func(r *kmsg.JoinGroupRequest) { r.Protocols = nil }, kerr.InconsistentGroupProtocol},
			{"no protocol type", func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "" }, kerr.InconsistentGroupProtocol},
			{"unknown member of unknown group", func(r *kmsg.JoinGroupRequest) { r.MemberID = "nobody" }, kerr.UnknownMemberID},
		} {
			req := joinRequest("", nil, "t1")
			tc.edit(req)
			if resp := <-h.join(req); resp.ErrorCode != tc.want.Code || resp.Generation != -1 {
				t.Errorf("%s: error %d generation %d, want %s", tc.name, resp.ErrorCode, resp.Generation, tc.want.Message)
			}
		}
		// None of those left a group behind.
		if gs := h.c.ListGroups(context.Background(), kmsg.NewPtrListGroupsRequest()).Groups; len(gs) != 0 {
			t.Fatalf("groups left: %+v", gs)
		}

		g := h.formGroup(1)
		other := joinRequest("", nil, "t1")
		other.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "roundrobin", Metadata: subscription("t1")}}
		if resp := <-h.join(other); resp.ErrorCode != kerr.InconsistentGroupProtocol.Code {
			t.Fatalf("join with no common protocol: error %d", resp.ErrorCode)
		}
		other = joinRequest("", nil, "t1")
		other.ProtocolType = "connect"
		if resp := <-h.join(other); resp.ErrorCode != kerr.InconsistentGroupProtocol.Code {
			t.Fatalf("join with another protocol type: error %d", resp.ErrorCode)
		}
		if d := h.describe(); d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != g.members[0] {
			t.Fatalf("group changed: %+v", d)
		}
	})
}

func TestThreeMembersOneGeneration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		ids := []string{h.memberID(), h.memberID(), h.memberID()}
		var chans []<-chan *kmsg.JoinGroupResponse
		for _, id := range ids {
			chans = append(chans, h.join(joinRequest(id, nil, "t1", "t2")))
			// Members trickling in extend the initial delay.
			time.Sleep(2 * time.Second)
		}
		var resps []*kmsg.JoinGroupResponse
		for _, ch := range chans {
			resps = append(resps, <-ch)
		}
		for i, r := range resps {
			if r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != ids[0] || r.MemberID != ids[i] {
				t.Fatalf("member %d: %+v", i, r)
			}
			if i == 0 && len(r.Members) != 3 {
				t.Fatalf("leader got %d members", len(r.Members))
			}
			if i > 0 && len(r.Members) != 0 {
				t.Fatalf("follower %d got %d members", i, len(r.Members))
			}
		}
		if d := h.describe(); d.State != "CompletingRebalance" || d.Protocol != "" || len(d.Members) != 3 {
			t.Fatalf("describe before sync: %+v", d)
		}
		// Followers wait for the leader.
		f1 := h.sync(syncRequest(ids[1], 1, nil, nil))
		f2 := h.sync(syncRequest(ids[2], 1, nil, nil))
		synctest.Wait()
		select {
		case r := <-f1:
			t.Fatalf("follower synced before the leader: %+v", r)
		default:
		}
		leader := <-h.sync(syncRequest(ids[0], 1, nil, map[string][]byte{ids[0]: []byte("A"), ids[1]: []byte("B")}))
		if leader.ErrorCode != 0 || string(leader.MemberAssignment) != "A" || *leader.Protocol != "cooperative-sticky" {
			t.Fatalf("leader sync: %+v", leader)
		}
		if r := <-f1; r.ErrorCode != 0 || string(r.MemberAssignment) != "B" {
			t.Fatalf("follower 1: %+v", r)
		}
		if r := <-f2; r.ErrorCode != 0 || len(r.MemberAssignment) != 0 {
			t.Fatalf("follower 2 (left out of the assignment): %+v", r)
		}
		d := h.describe()
		if d.State != "Stable" || d.Protocol != "cooperative-sticky" || d.ProtocolType != "consumer" || len(d.Members) != 3 {
			t.Fatalf("describe: %+v", d)
		}
		if m := d.Members[1]; m.MemberID != ids[1] || m.ClientID != "client" || m.ClientHost != "/127.0.0.1" || string(m.MemberAssignment) != "B" || string(m.ProtocolMetadata) != string(subscription("t1", "t2")) {
			t.Fatalf("member 1: %+v", m)
		}
		// A sync in Stable gets the member's assignment again.
		if r := <-h.sync(syncRequest(ids[1], 1, nil, nil)); r.ErrorCode != 0 || string(r.MemberAssignment) != "B" {
			t.Fatalf("sync again: %+v", r)
		}
		// A follower rejoining with the same metadata in Stable gets the
		// current generation back without a rebalance.
		if r := <-h.join(joinRequest(ids[2], nil, "t1", "t2")); r.ErrorCode != 0 || r.Generation != 1 || len(r.Members) != 0 {
			t.Fatalf("follower rejoin: %+v", r)
		}
		if d := h.describe(); d.State != "Stable" {
			t.Fatalf("state after follower rejoin: %s", d.State)
		}
	})
}

func TestLeaveTriggersRebalance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(2)
		resp := h.leave(kmsg.LeaveGroupRequestMember{MemberID: g.members[1]}, kmsg.LeaveGroupRequestMember{MemberID: "nobody"})
		if resp.ErrorCode != 0 || len(resp.Members) != 2 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("leave: %+v", resp)
		}
		if code := h.heartbeat(g.members[0], g.generation, nil); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat after leave: %d", code)
		}
		if code := h.heartbeat(g.members[1], g.generation, nil); code != kerr.UnknownMemberID.Code {
			t.Fatalf("heartbeat of the member that left: %d", code)
		}
		// A sync of the old generation is refused meanwhile.
		if r := <-h.sync(syncRequest(g.members[0], g.generation, nil, nil)); r.ErrorCode != kerr.RebalanceInProgress.Code {
			t.Fatalf("sync during rebalance: %d", r.ErrorCode)
		}
		r := <-h.join(joinRequest(g.members[0], nil, "t1"))
		if r.ErrorCode != 0 || r.Generation != g.generation+1 || len(r.Members) != 1 {
			t.Fatalf("rejoin: %+v", r)
		}

		// v0 leave: one member, error at the top.
		old := kmsg.NewPtrLeaveGroupRequest()
		old.Group, old.MemberID = testGroup, "nobody"
		if resp := h.c.LeaveGroup(context.Background(), old); resp.ErrorCode != kerr.UnknownMemberID.Code || resp.Members != nil {
			t.Fatalf("v0 leave of unknown member: %+v", resp)
		}
		old.MemberID = g.members[0]
		if resp := h.c.LeaveGroup(context.Background(), old); resp.ErrorCode != 0 {
			t.Fatalf("v0 leave: %+v", resp)
		}
		// The last member left mid-rebalance: the group ends Empty at the
		// next generation.
		if d := h.describe(); d.State != "Empty" || len(d.Members) != 0 {
			t.Fatalf("after everyone left: %+v", d)
		}
	})
}

func TestScriptSessionExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(2)
		// Only member 0 heartbeats, every 3s; member 1's 10s session runs out.
		for range 3 {
			time.Sleep(3 * time.Second)
			if code := h.heartbeat(g.members[0], g.generation, nil); code != 0 {
				t.Fatalf("heartbeat: %d", code)
			}
		}
		time.Sleep(2 * time.Second) // 11s since member 1's last sync
		if code := h.heartbeat(g.members[0], g.generation, nil); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat after member 1 expired: %d", code)
		}
		if code := h.heartbeat(g.members[1], g.generation, nil); code != kerr.UnknownMemberID.Code {
			t.Fatalf("expired member's heartbeat: %d", code)
		}
		r := <-h.join(joinRequest(g.members[0], nil, "t1"))
		if r.ErrorCode != 0 || r.Generation != g.generation+1 || len(r.Members) != 1 || r.LeaderID != g.members[0] {
			t.Fatalf("rejoin: %+v", r)
		}
	})
}

func TestRebalanceTimeoutRemovesNonRejoining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(3)
		// The leader rejoins (a subscription change): a rebalance starts.
		start := time.Now()
		leader := h.join(joinRequest(g.leader, nil, "t1", "t2"))
		synctest.Wait()
		// Member 1 rejoins; member 2 keeps heartbeating but never rejoins.
		follower := h.join(joinRequest(g.members[1], nil, "t1"))
		for range 9 {
			time.Sleep(3 * time.Second)
			if code := h.heartbeat(g.members[2], g.generation, nil); code != kerr.RebalanceInProgress.Code {
				t.Fatalf("heartbeat during rebalance: %d", code)
			}
		}
		r := <-leader
		if took := time.Since(start); took != 30*time.Second {
			t.Fatalf("rebalance took %s, want the 30s rebalance timeout", took)
		}
		if r.ErrorCode != 0 || r.Generation != g.generation+1 || len(r.Members) != 2 {
			t.Fatalf("leader: %+v", r)
		}
		if r := <-follower; r.ErrorCode != 0 || r.Generation != g.generation+1 {
			t.Fatalf("follower: %+v", r)
		}
		if code := h.heartbeat(g.members[2], g.generation, nil); code != kerr.UnknownMemberID.Code {
			t.Fatalf("removed member's heartbeat: %d", code)
		}
	})
}

func TestGenerationAndMemberChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(2)
		m := g.members[1]
		for _, tc := range []struct {
			name string
			got  func() int16
			want *kerr.Error
		}{
			{"heartbeat old generation", func() int16 { return h.heartbeat(m, g.generation-1, nil) }, kerr.IllegalGeneration},
			{"heartbeat unknown member", func() int16 { return h.heartbeat("ghost", g.generation, nil) }, kerr.UnknownMemberID},
			{"heartbeat unknown group", func() int16 {
				req := kmsg.NewPtrHeartbeatRequest()
				req.Group, req.MemberID = "nope", m
				return h.c.Heartbeat(context.Background(), req).ErrorCode
			}, kerr.UnknownMemberID},
			{"heartbeat unknown instance", func() int16 { return h.heartbeat(m, g.generation, ptr("i")) }, kerr.UnknownMemberID},
			{"sync old generation", func() int16 { return (<-h.sync(syncRequest(m, g.generation+1, nil, nil))).ErrorCode }, kerr.IllegalGeneration},
			{"sync wrong protocol", func() int16 {
				req := syncRequest(m, g.generation, nil, nil)
				req.Protocol = ptr("range")
				return (<-h.sync(req)).ErrorCode
			}, kerr.InconsistentGroupProtocol},
			{"sync wrong protocol type", func() int16 {
				req := syncRequest(m, g.generation, nil, nil)
				req.ProtocolType = ptr("connect")
				return (<-h.sync(req)).ErrorCode
			}, kerr.InconsistentGroupProtocol},
			{"commit old generation", func() int16 { return h.commit(m, g.generation-1, "t1", 0, 5).Topics[0].Partitions[0].ErrorCode }, kerr.IllegalGeneration},
			{"commit unknown member", func() int16 { return h.commit("ghost", g.generation, "t1", 0, 5).Topics[0].Partitions[0].ErrorCode }, kerr.UnknownMemberID},
			{"admin commit to active group", func() int16 { return h.commit("", -1, "t1", 0, 5).Topics[0].Partitions[0].ErrorCode }, kerr.UnknownMemberID},
			{"heartbeat ok", func() int16 { return h.heartbeat(m, g.generation, nil) }, nil},
		} {
			want := int16(0)
			if tc.want != nil {
				want = tc.want.Code
			}
			if got := tc.got(); got != want {
				t.Errorf("%s: error %d, want %d", tc.name, got, want)
			}
		}
	})
}

func TestStaticMemberRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(2, "alpha", "beta")
		if g.leader != g.members[0] {
			t.Fatalf("leader %s, want %s", g.leader, g.members[0])
		}
		// beta restarts: no LeaveGroup, rejoins with its instance id and no
		// member id. Static members skip MEMBER_ID_REQUIRED.
		r := <-h.join(joinRequest("", ptr("beta"), "t1"))
		if r.ErrorCode != 0 || r.MemberID == g.members[1] || r.Generation != g.generation || r.LeaderID != g.leader || len(r.Members) != 0 {
			t.Fatalf("static rejoin: %+v", r)
		}
		newBeta := r.MemberID
		if d := h.describe(); d.State != "Stable" {
			t.Fatalf("static rejoin rebalanced: %s", d.State)
		}
		if s := <-h.sync(syncRequest(newBeta, g.generation, ptr("beta"), nil)); s.ErrorCode != 0 || string(s.MemberAssignment) != "b" {
			t.Fatalf("sync after static rejoin: %+v", s)
		}
		if code := h.heartbeat(g.members[1], g.generation, ptr("beta")); code != kerr.FencedInstanceID.Code {
			t.Fatalf("old member id heartbeat: %d", code)
		}
		if code := h.heartbeat(newBeta, g.generation, ptr("beta")); code != 0 {
			t.Fatalf("new member id heartbeat: %d", code)
		}
		// The leader restarting keeps leading but must not reassign
		// (KIP-814: SkipAssignment in v9).
		r = <-h.join(joinRequest("", ptr("alpha"), "t1"))
		if r.ErrorCode != 0 || r.LeaderID != r.MemberID || r.MemberID == g.members[0] || !r.SkipAssignment || len(r.Members) != 2 {
			t.Fatalf("static leader rejoin: %+v", r)
		}
		newAlpha := r.MemberID
		if s := <-h.sync(syncRequest(newAlpha, g.generation, ptr("alpha"), nil)); s.ErrorCode != 0 || string(s.MemberAssignment) != "a" {
			t.Fatalf("leader sync after static rejoin: %+v", s)
		}
		// A rejoin with a changed subscription rebalances. (A restart with
		// a new member id keeps the assignment whenever the selected
		// protocol stays, as Kafka: the consumer itself asks to rejoin.)
		ch := h.join(joinRequest(newBeta, ptr("beta"), "t1", "t2"))
		synctest.Wait()
		if d := h.describe(); d.State != "PreparingRebalance" {
			t.Fatalf("subscription change: state %s", d.State)
		}
		if code := h.heartbeat(newAlpha, g.generation, ptr("alpha")); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat: %d", code)
		}
		other := h.join(joinRequest(newAlpha, ptr("alpha"), "t1"))
		r, r2 := <-ch, <-other
		if r.ErrorCode != 0 || r2.ErrorCode != 0 || r.Generation != g.generation+1 || r2.LeaderID != newAlpha || len(r2.Members) != 2 {
			t.Fatalf("rebalance: %+v %+v", r, r2)
		}
		// Static members leave by instance id alone (an admin's removal).
		resp := h.leave(kmsg.LeaveGroupRequestMember{InstanceID: ptr("beta")}, kmsg.LeaveGroupRequestMember{InstanceID: ptr("gamma")},
			kmsg.LeaveGroupRequestMember{MemberID: g.members[0], InstanceID: ptr("alpha")})
		if resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code || resp.Members[2].ErrorCode != kerr.FencedInstanceID.Code {
			t.Fatalf("leave: %+v", resp.Members)
		}
		if d := h.describe(); len(d.Members) != 1 || *d.Members[0].InstanceID != "alpha" {
			t.Fatalf("members after leave: %+v", d.Members)
		}
	})
}

func TestStaticMemberSessionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(2, "alpha", "beta")
		// beta is gone without leaving: it stays until its session ends.
		for range 3 {
			time.Sleep(3 * time.Second)
			if code := h.heartbeat(g.members[0], g.generation, ptr("alpha")); code != 0 {
				t.Fatalf("heartbeat: %d", code)
			}
		}
		time.Sleep(2 * time.Second)
		if code := h.heartbeat(g.members[0], g.generation, ptr("alpha")); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat after beta's session: %d", code)
		}
	})
}

func TestPendingJoinFailsOnCloseAndCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(2)
		ctx, cancel := context.WithCancel(context.Background())
		abandoned := h.joinCtx(ctx, joinRequest(g.members[0], nil, "t1", "t2"))
		synctest.Wait()
		cancel()
		if r := <-abandoned; r.ErrorCode != kerr.RebalanceInProgress.Code {
			t.Fatalf("join whose ctx ended: %d", r.ErrorCode)
		}
		pending := h.join(joinRequest(g.members[0], nil, "t1", "t2"))
		synctest.Wait()
		if err := h.c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if r := <-pending; r.ErrorCode != kerr.NotCoordinator.Code {
			t.Fatalf("join during Close: %d", r.ErrorCode)
		}
		if code := h.heartbeat(g.members[1], g.generation, nil); code != kerr.NotCoordinator.Code {
			t.Fatalf("heartbeat after Close: %d", code)
		}
	})
}
