package test

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawMember is a group member spoken by hand over one connection, so a
// test decides when it heartbeats (or never does).
type rawMember struct {
	c          *rawConn
	version    map[int16]int16 // API key → version to use
	group      string
	topic      string
	memberID   string
	generation int32
	leader     string
	protocol   string
	members    []kmsg.JoinGroupResponseMember
	assigned   []int32
}

// consumerMetadata encodes a consumer protocol subscription of topic.
func consumerMetadata(topic string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 0
	m.Topics = []string{topic}
	return m.AppendTo(nil)
}

// consumerAssignment encodes a consumer protocol assignment of partitions
// of topic.
func consumerAssignment(topic string, partitions []int32) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	a.Version = 0
	t := kmsg.NewConsumerMemberAssignmentTopic()
	t.Topic, t.Partitions = topic, partitions
	a.Topics = append(a.Topics, t)
	return a.AppendTo(nil)
}

// join sends JoinGroup (twice at v4+, the first answered MEMBER_ID_REQUIRED)
// and blocks until the rebalance completes.
func (m *rawMember) join(tb testing.TB, sessionTimeout, rebalanceTimeout time.Duration) {
	tb.Helper()
	for attempt := 0; ; attempt++ {
		req := kmsg.NewPtrJoinGroupRequest()
		req.SetVersion(m.version[req.Key()])
		req.Group, req.MemberID, req.ProtocolType = m.group, m.memberID, "consumer"
		req.SessionTimeoutMillis = int32(sessionTimeout.Milliseconds())
		req.RebalanceTimeoutMillis = int32(rebalanceTimeout.Milliseconds())
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", consumerMetadata(m.topic)
		req.Protocols = append(req.Protocols, p)
		resp := m.c.mustRoundTrip(req).(*kmsg.JoinGroupResponse)
		if resp.ErrorCode == kerr.MemberIDRequired.Code && attempt == 0 {
			m.memberID = resp.MemberID
			continue
		}
		wantNoError(tb, "JoinGroup", resp.ErrorCode)
		m.memberID, m.generation, m.leader, m.members = resp.MemberID, resp.Generation, resp.LeaderID, resp.Members
		if resp.Protocol != nil {
			m.protocol = *resp.Protocol
		}
		return
	}
}

// sync sends SyncGroup with assignments (leader only) and blocks until the
// member's assignment arrives.
func (m *rawMember) sync(tb testing.TB, assignments map[string][]int32) {
	tb.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.SetVersion(m.version[req.Key()])
	req.Group, req.MemberID, req.Generation = m.group, m.memberID, m.generation
	protocolType, protocol := "consumer", "range"
	req.ProtocolType, req.Protocol = &protocolType, &protocol
	for member, partitions := range assignments {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = member, consumerAssignment(m.topic, partitions)
		req.GroupAssignment = append(req.GroupAssignment, a)
	}
	resp := m.c.mustRoundTrip(req).(*kmsg.SyncGroupResponse)
	wantNoError(tb, "SyncGroup", resp.ErrorCode)
	a := kmsg.NewConsumerMemberAssignment()
	if err := a.ReadFrom(resp.MemberAssignment); err != nil {
		tb.Fatalf("SyncGroup assignment: %v", err)
	}
	m.assigned = nil
	for _, t := range a.Topics {
		m.assigned = append(m.assigned, t.Partitions...)
	}
	slices.Sort(m.assigned)
}

// newestVersions maps each API key to the newest version the server
// advertises.
func newestVersions(keys map[int16]kmsg.ApiVersionsResponseApiKey) map[int16]int16 {
	v := map[int16]int16{}
	for k, a := range keys {
		v[k] = a.MaxVersion
	}
	return v
}

// TestGroupMemberExpires joins a member by hand next to a franz-go member,
// lets it take half the partitions and then stops its heartbeats without
// leaving (as a crashed process would): after its session timeout it is
// removed and the franz-go member owns every partition again.
func TestGroupMemberExpires(t *testing.T) {
	srv := startServer(t)
	const topic, group = "expire", "expire-group"
	createTopic(t, srv.Addr, topic, 6)
	w := newGroupWatch()
	startMember(t, srv.Addr, group, topic, "live", w, kgo.Balancers(kgo.RangeBalancer()))
	w.waitFor(t, "the franz-go member owns every partition", func() bool { return len(w.assigned["live"]) == 6 })

	dead := &rawMember{c: dialRaw(t, srv.Addr), version: newestVersions(apiVersions(t, srv.Addr)), group: group, topic: topic}
	dead.join(t, time.Second, 2*time.Second) // the franz-go member leads and assigns
	dead.sync(t, nil)
	if len(dead.assigned) == 0 {
		t.Fatalf("the hand-joined member got no partitions (leader %s, generation %d)", dead.leader, dead.generation)
	}
	w.waitFor(t, "the franz-go member gives up the other member's partitions", func() bool {
		return len(w.assigned["live"]) == 6-len(dead.assigned)
	})
	expiredAt := time.Now()
	// No heartbeat, no LeaveGroup: the session timeout (1 s) must expire it.
	w.waitFor(t, "the franz-go member owns every partition after the expiry", func() bool { return len(w.assigned["live"]) == 6 })
	if took := time.Since(expiredAt); took > 10*time.Second {
		t.Errorf("member expired after %s, its session timeout is 1s", took)
	}
	g := describeGroup(t, srv.Addr, group)
	if len(g.Members) != 1 || g.Members[0].MemberID == dead.memberID {
		t.Errorf("members after expiry: %+v", g.Members)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.SetVersion(dead.version[hb.Key()])
	hb.Group, hb.MemberID, hb.Generation = group, dead.memberID, dead.generation
	resp := dead.c.mustRoundTrip(hb).(*kmsg.HeartbeatResponse)
	if resp.ErrorCode != kerr.UnknownMemberID.Code && resp.ErrorCode != kerr.IllegalGeneration.Code {
		t.Errorf("heartbeat of the expired member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestRawGroupAPIsOldestAndNewest drives one member's whole life (find
// coordinator, join, sync, heartbeat, commit, fetch offsets, describe,
// list, leave, delete offsets, delete the group) and OffsetForLeaderEpoch
// by hand at the oldest and at the newest version the server advertises.
func TestRawGroupAPIsOldestAndNewest(t *testing.T) {
	srv := startServer(t)
	const topic = "raw-groups"
	createTopic(t, srv.Addr, topic, 2)
	records := makeRecords(topic, 5)
	for _, r := range records {
		r.Partition = 0
	}
	produceAll(t, newClient(t, srv.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner())), records)
	keys := apiVersions(t, srv.Addr)
	for _, key := range []int16{8, 9, 10, 11, 12, 13, 14, 15, 16, 23, 42, 47} {
		if _, ok := keys[key]; !ok {
			t.Fatalf("ApiVersions does not advertise %s", kmsg.NameForKey(key))
		}
	}
	for _, tc := range []struct {
		name string
		pick func(kmsg.ApiVersionsResponseApiKey) int16
	}{
		{"oldest", func(k kmsg.ApiVersionsResponseApiKey) int16 { return k.MinVersion }},
		{"newest", func(k kmsg.ApiVersionsResponseApiKey) int16 { return k.MaxVersion }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			version := map[int16]int16{}
			for k, a := range keys {
				version[k] = tc.pick(a)
			}
			group := "raw-group-" + tc.name
			c := dialRaw(t, srv.Addr)
			roundTrip := func(req kmsg.Request) kmsg.Response {
				t.Helper()
				req.SetVersion(version[req.Key()])
				return c.mustRoundTrip(req)
			}

			find := kmsg.NewPtrFindCoordinatorRequest()
			find.CoordinatorKey, find.CoordinatorKeys = group, []string{group}
			fr := roundTrip(find).(*kmsg.FindCoordinatorResponse)
			if find.Version >= 4 {
				if len(fr.Coordinators) != 1 {
					t.Fatalf("FindCoordinator v%d: %d coordinators", find.Version, len(fr.Coordinators))
				}
				wantNoError(t, "FindCoordinator", fr.Coordinators[0].ErrorCode)
			} else {
				wantNoError(t, "FindCoordinator", fr.ErrorCode)
				if fr.Port <= 0 {
					t.Errorf("FindCoordinator v%d: port %d", find.Version, fr.Port)
				}
			}

			m := &rawMember{c: c, version: version, group: group, topic: topic}
			m.join(t, 6*time.Second, 6*time.Second)
			if m.leader != m.memberID || len(m.members) != 1 {
				t.Fatalf("JoinGroup: leader %q, member %q, %d members", m.leader, m.memberID, len(m.members))
			}
			m.sync(t, map[string][]int32{m.memberID: {0}})
			if !slices.Equal(m.assigned, []int32{0}) {
				t.Fatalf("SyncGroup assigned %v", m.assigned)
			}

			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Group, hb.MemberID, hb.Generation = group, m.memberID, m.generation
			wantNoError(t, "Heartbeat", roundTrip(hb).(*kmsg.HeartbeatResponse).ErrorCode)

			// commitAndFetch commits offset 3 of both partitions, as the
			// member (v1+) or, from outside the group, with generation -1
			// (v0 has no member: Kafka accepts that only for an empty
			// group), then fetches them back.
			commitAndFetch := func(asMember bool) {
				t.Helper()
				commit := kmsg.NewPtrOffsetCommitRequest()
				commit.Group, commit.Generation = group, -1
				if asMember {
					commit.MemberID, commit.Generation = m.memberID, m.generation
				}
				commit.RetentionTimeMillis = -1
				ct := kmsg.NewOffsetCommitRequestTopic()
				ct.Topic = topic
				for p := range int32(2) {
					cp := kmsg.NewOffsetCommitRequestTopicPartition()
					cp.Partition, cp.Offset, cp.LeaderEpoch = p, 3, -1
					ct.Partitions = append(ct.Partitions, cp)
				}
				commit.Topics = append(commit.Topics, ct)
				cr := roundTrip(commit).(*kmsg.OffsetCommitResponse)
				if len(cr.Topics) != 1 || len(cr.Topics[0].Partitions) != 2 {
					t.Fatalf("OffsetCommit v%d response %+v", commit.Version, cr)
				}
				for _, p := range cr.Topics[0].Partitions {
					wantNoError(t, "OffsetCommit", p.ErrorCode)
				}

				fetch := kmsg.NewPtrOffsetFetchRequest()
				fetch.SetVersion(version[fetch.Key()])
				var committed int64 = -2
				if fetch.Version >= 8 {
					g := kmsg.NewOffsetFetchRequestGroup()
					g.Group = group
					ft := kmsg.NewOffsetFetchRequestGroupTopic()
					ft.Topic, ft.Partitions = topic, []int32{0}
					g.Topics = append(g.Topics, ft)
					fetch.Groups = append(fetch.Groups, g)
					fr := roundTrip(fetch).(*kmsg.OffsetFetchResponse)
					if len(fr.Groups) == 1 && len(fr.Groups[0].Topics) == 1 && len(fr.Groups[0].Topics[0].Partitions) == 1 {
						wantNoError(t, "OffsetFetch", fr.Groups[0].ErrorCode)
						wantNoError(t, "OffsetFetch partition", fr.Groups[0].Topics[0].Partitions[0].ErrorCode)
						committed = fr.Groups[0].Topics[0].Partitions[0].Offset
					}
				} else {
					fetch.Group = group
					ft := kmsg.NewOffsetFetchRequestTopic()
					ft.Topic, ft.Partitions = topic, []int32{0}
					fetch.Topics = append(fetch.Topics, ft)
					fr := roundTrip(fetch).(*kmsg.OffsetFetchResponse)
					wantNoError(t, "OffsetFetch", fr.ErrorCode)
					if len(fr.Topics) == 1 && len(fr.Topics[0].Partitions) == 1 {
						wantNoError(t, "OffsetFetch partition", fr.Topics[0].Partitions[0].ErrorCode)
						committed = fr.Topics[0].Partitions[0].Offset
					}
				}
				if committed != 3 {
					t.Errorf("OffsetFetch v%d: committed offset %d, want 3", fetch.Version, committed)
				}
			}
			commitAsMember := version[kmsg.NewPtrOffsetCommitRequest().Key()] >= 1
			if commitAsMember {
				commitAndFetch(true)
			}

			describe := kmsg.NewPtrDescribeGroupsRequest()
			describe.Groups = []string{group}
			dr := roundTrip(describe).(*kmsg.DescribeGroupsResponse)
			if len(dr.Groups) != 1 || dr.Groups[0].State != "Stable" || len(dr.Groups[0].Members) != 1 || dr.Groups[0].Protocol != "range" {
				t.Errorf("DescribeGroups v%d: %+v", describe.Version, dr.Groups)
			} else {
				wantNoError(t, "DescribeGroups", dr.Groups[0].ErrorCode)
			}

			list := kmsg.NewPtrListGroupsRequest()
			lr := roundTrip(list).(*kmsg.ListGroupsResponse)
			wantNoError(t, "ListGroups", lr.ErrorCode)
			if !slices.ContainsFunc(lr.Groups, func(g kmsg.ListGroupsResponseGroup) bool { return g.Group == group }) {
				t.Errorf("ListGroups v%d does not list %s: %+v", list.Version, group, lr.Groups)
			}

			// The partition's leader epoch is its Raft term.
			meta := kmsg.NewPtrMetadataRequest()
			meta.SetVersion(12)
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(topic)
			meta.Topics = append(meta.Topics, mt)
			mr := c.mustRoundTrip(meta).(*kmsg.MetadataResponse) // v12 whatever the case: v0 has no epochs
			if len(mr.Topics) != 1 || len(mr.Topics[0].Partitions) == 0 {
				t.Fatalf("Metadata of %s: %+v", topic, mr.Topics)
			}
			leaderEpoch := mr.Topics[0].Partitions[0].LeaderEpoch

			epoch := kmsg.NewPtrOffsetForLeaderEpochRequest()
			epoch.ReplicaID = -1
			et := kmsg.NewOffsetForLeaderEpochRequestTopic()
			et.Topic = topic
			ep := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			ep.Partition, ep.CurrentLeaderEpoch, ep.LeaderEpoch = 0, -1, leaderEpoch
			et.Partitions = append(et.Partitions, ep)
			epoch.Topics = append(epoch.Topics, et)
			er := roundTrip(epoch).(*kmsg.OffsetForLeaderEpochResponse)
			if len(er.Topics) != 1 || len(er.Topics[0].Partitions) != 1 {
				t.Fatalf("OffsetForLeaderEpoch v%d: %+v", epoch.Version, er)
			}
			sp := er.Topics[0].Partitions[0]
			wantNoError(t, "OffsetForLeaderEpoch", sp.ErrorCode)
			if sp.EndOffset != 5 || (epoch.Version >= 1 && sp.LeaderEpoch != leaderEpoch) {
				t.Errorf("OffsetForLeaderEpoch v%d: epoch %d end offset %d, want %d and 5", epoch.Version, sp.LeaderEpoch, sp.EndOffset, leaderEpoch)
			}

			leave := kmsg.NewPtrLeaveGroupRequest()
			leave.Group, leave.MemberID = group, m.memberID
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = m.memberID
			leave.Members = append(leave.Members, lm)
			wantNoError(t, "LeaveGroup", roundTrip(leave).(*kmsg.LeaveGroupResponse).ErrorCode)
			if !commitAsMember {
				commitAndFetch(false)
			}

			del := kmsg.NewPtrOffsetDeleteRequest()
			del.Group = group
			dt := kmsg.NewOffsetDeleteRequestTopic()
			dt.Topic = topic
			// Only partition 1: a group left with no offsets at all is
			// removed at once (as Kafka does), and DeleteGroups follows.
			dp := kmsg.NewOffsetDeleteRequestTopicPartition()
			dp.Partition = 1
			dt.Partitions = append(dt.Partitions, dp)
			del.Topics = append(del.Topics, dt)
			dr2 := roundTrip(del).(*kmsg.OffsetDeleteResponse)
			wantNoError(t, "OffsetDelete", dr2.ErrorCode)
			if len(dr2.Topics) == 1 && len(dr2.Topics[0].Partitions) == 1 {
				wantNoError(t, "OffsetDelete partition", dr2.Topics[0].Partitions[0].ErrorCode)
			}

			dg := kmsg.NewPtrDeleteGroupsRequest()
			dg.Groups = []string{group}
			dgr := roundTrip(dg).(*kmsg.DeleteGroupsResponse)
			if len(dgr.Groups) != 1 {
				t.Fatalf("DeleteGroups v%d: %+v", dg.Version, dgr)
			}
			wantNoError(t, "DeleteGroups", dgr.Groups[0].ErrorCode)
		})
	}
}

// TestGroupAPIsNotAdvertisedWithoutCoordinator checks that a server
// without a coordinator neither advertises nor serves the group APIs.
func TestGroupAPIsNotAdvertisedWithoutCoordinator(t *testing.T) {
	srv := startServer(t, func(c *serverConfig) { c.NoGroups = true })
	keys := apiVersions(t, srv.Addr)
	for _, key := range []int16{8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 47} {
		if _, ok := keys[key]; ok {
			t.Errorf("ApiVersions advertises %s without a coordinator", kmsg.NameForKey(key))
		}
	}
	if _, ok := keys[23]; !ok {
		t.Error("OffsetForLeaderEpoch needs no coordinator but is not advertised")
	}
	c := dialRaw(t, srv.Addr)
	find := kmsg.NewPtrFindCoordinatorRequest()
	find.SetVersion(0)
	find.CoordinatorKey = "g"
	if _, err := c.roundTrip(find); err == nil {
		t.Error("FindCoordinator answered by a server without a coordinator; want the connection closed")
	}
}

// wantNoError fails the test when code is an error code.
func wantNoError(tb testing.TB, what string, code int16) {
	tb.Helper()
	if code != 0 {
		tb.Errorf("%s: error code %d (%v)", what, code, kerr.ErrorForCode(code))
	}
}
