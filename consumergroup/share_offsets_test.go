package consumergroup

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestShareGroupOffsets alters, describes and deletes share-partition
// start offsets through the persister: refused while the group has
// members, a reset raises the state epoch (fencing the live
// share-partition), a describe of all topics covers every topic ever
// assigned, and a delete removes the states and the topic.
func TestShareGroupOffsets(t *testing.T) {
	h := newHarness(t)
	persister := newMemPersister()
	h.openShareCoordinator(testConfig(), persister)
	ctx := context.Background()
	t1, _ := h.cl.Topic("t1")

	alter := func(topic string, partition int32, offset int64) *kmsg.AlterShareGroupOffsetsResponse {
		req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		req.GroupID = testShareGroup
		rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
		rt.Topic = topic
		rt.Partitions = []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: partition, StartOffset: offset}}
		req.Topics = []kmsg.AlterShareGroupOffsetsRequestTopic{rt}
		return h.c.AlterShareGroupOffsets(ctx, req)
	}
	describe := func(topics []kmsg.DescribeShareGroupOffsetsRequestGroupTopic) kmsg.DescribeShareGroupOffsetsResponseGroup {
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		rg.GroupID, rg.Topics = testShareGroup, topics
		req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{rg}
		return h.c.DescribeShareGroupOffsets(ctx, req).Groups[0]
	}

	if g := describe(nil); g.ErrorCode != 0 || len(g.Topics) != 0 {
		t.Fatalf("describe of an unknown group: %+v, want no error and no topics", g)
	}
	if g := describe([]kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "t1", Partitions: []int32{0}}}); g.ErrorCode != 0 || g.Topics[0].Partitions[0].StartOffset != -1 {
		t.Fatalf("describe of an unknown group's partition: %+v, want start offset -1", g)
	}
	// A member: alter is refused.
	if r := h.shareHeartbeat("a", 0, "t1"); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	if r := alter("t1", 0, 5); r.ErrorCode != kerr.NonEmptyGroup.Code {
		t.Fatalf("alter with a member: %v, want NON_EMPTY_GROUP", kerr.ErrorForCode(r.ErrorCode))
	}
	// A share-partition the leader initialized at 2 (epoch 0).
	key := ShareStateKey{Group: testShareGroup, TopicID: t1.ID(), Partition: 1}
	if err := persister.Initialize(ctx, key, 0, 2); err != nil {
		t.Fatal(err)
	}
	if r := h.shareHeartbeat("a", -1); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	r := alter("t1", 1, 7)
	if r.ErrorCode != 0 || len(r.Topics) != 1 || r.Topics[0].TopicID != t1.ID() || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("alter: %+v", r)
	}
	if s, _ := persister.ReadSummary(ctx, key); s.StateEpoch != 1 || s.StartOffset != 7 {
		t.Fatalf("state after alter: %+v, want epoch 1 start 7", s)
	}
	// The leader's writes with the old epoch are fenced.
	if err := persister.write(key, 0, 8); err == nil {
		t.Fatal("write with the old state epoch was accepted")
	}
	if r := alter("nope", 0, 1); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("alter of an unknown topic: %+v", r.Topics[0].Partitions[0])
	}
	if r := alter("t1", 9, 1); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("alter of an unknown partition: %+v", r.Topics[0].Partitions[0])
	}

	g := describe(nil)
	if g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].Topic != "t1" || len(g.Topics[0].Partitions) != 3 {
		t.Fatalf("describe all: %+v", g)
	}
	for _, p := range g.Topics[0].Partitions {
		want := int64(-1)
		if p.Partition == 1 {
			want = 7
		}
		if p.StartOffset != want || p.ErrorCode != 0 {
			t.Errorf("partition %d: start %d error %d, want %d", p.Partition, p.StartOffset, p.ErrorCode, want)
		}
	}
	g = describe([]kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "t2", Partitions: []int32{0}}, {Topic: "nope", Partitions: []int32{0}}})
	if len(g.Topics) != 2 || g.Topics[0].Partitions[0].StartOffset != -1 || g.Topics[1].Partitions[0].ErrorCode != 0 || g.Topics[1].Partitions[0].StartOffset != -1 {
		t.Errorf("describe of named topics: %+v", g)
	}

	del := func(topics ...string) *kmsg.DeleteShareGroupOffsetsResponse {
		req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		req.GroupID = testShareGroup
		for _, tp := range topics {
			req.Topics = append(req.Topics, kmsg.DeleteShareGroupOffsetsRequestTopic{Topic: tp})
		}
		return h.c.DeleteShareGroupOffsets(ctx, req)
	}
	d := del("t1", "nope")
	if d.ErrorCode != 0 || len(d.Topics) != 2 || d.Topics[0].ErrorCode != 0 || d.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete: %+v", d)
	}
	if s, _ := persister.ReadSummary(ctx, key); s.StateEpoch != -1 {
		t.Errorf("state after delete: %+v", s)
	}
	if g := describe(nil); g.ErrorCode != 0 || len(g.Topics) != 0 {
		t.Errorf("describe after delete: %+v, want no topics", g)
	}
	// The group's forgetting the topic survives a restart.
	h.restart()
	h.openShareCoordinator(testConfig(), persister)
	if g := describe(nil); g.ErrorCode != 0 || len(g.Topics) != 0 {
		t.Errorf("describe after restart: %+v, want the group with no topics", g)
	}
}

// shareBase is the start offset TestShareGroupOffsetsManyPartitions gives
// partition 0 of each topic.
var shareBase = map[string]int64{"t1": 100, "t2": 200}

// TestShareGroupOffsetsManyPartitions alters and describes many
// share-partitions of two topics in one request each: the answers (read
// and reset in parallel) land on their own topic and partition.
func TestShareGroupOffsetsManyPartitions(t *testing.T) {
	h := newHarness(t)
	persister := newMemPersister()
	h.openShareCoordinator(testConfig(), persister)
	ctx := context.Background()
	req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	req.GroupID = testShareGroup
	for _, tc := range []struct {
		topic string
		n     int32
	}{{"t1", 3}, {"t2", 2}} {
		rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
		rt.Topic = tc.topic
		for p := range tc.n + 1 { // one partition too many
			rt.Partitions = append(rt.Partitions, kmsg.AlterShareGroupOffsetsRequestTopicPartition{Partition: p, StartOffset: shareBase[tc.topic] + int64(p)})
		}
		req.Topics = append(req.Topics, rt)
	}
	resp := h.c.AlterShareGroupOffsets(ctx, req)
	if resp.ErrorCode != 0 || len(resp.Topics) != 2 {
		t.Fatalf("alter: %+v", resp)
	}
	for ti, rt := range resp.Topics {
		want := map[string]int32{"t1": 3, "t2": 2}[rt.Topic]
		if rt.Topic != req.Topics[ti].Topic || int32(len(rt.Partitions)) != want+1 {
			t.Fatalf("topic %d: %+v", ti, rt)
		}
		for pi, rp := range rt.Partitions {
			wantCode := int16(0)
			if rp.Partition == want {
				wantCode = kerr.UnknownTopicOrPartition.Code
			}
			if rp.Partition != int32(pi) || rp.ErrorCode != wantCode {
				t.Errorf("%s partition %d (at %d): error %v, want %v", rt.Topic, rp.Partition, pi, kerr.ErrorForCode(rp.ErrorCode), kerr.ErrorForCode(wantCode))
			}
		}
	}
	d := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	d.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: testShareGroup}}
	g := h.c.DescribeShareGroupOffsets(ctx, d).Groups[0]
	if len(g.Topics) != 2 {
		t.Fatalf("describe: %+v", g)
	}
	for _, dt := range g.Topics {
		for pi, dp := range dt.Partitions {
			if want := shareBase[dt.Topic] + int64(pi); dp.Partition != int32(pi) || dp.StartOffset != want {
				t.Errorf("%s partition %d (at %d): start %d, want %d", dt.Topic, dp.Partition, pi, dp.StartOffset, want)
			}
		}
	}
}
