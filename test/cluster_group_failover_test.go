package test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupCoordinator asks the node at addr which node coordinates group;
// -1 while it knows none.
func groupCoordinator(t *testing.T, addr, group string) int32 {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.SetVersion(4)
	req.CoordinatorKeys = []string{group}
	resp := dialRaw(t, addr).mustRoundTrip(req).(*kmsg.FindCoordinatorResponse)
	if len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != 0 {
		return -1
	}
	return resp.Coordinators[0].NodeID
}

// committedOffset returns group's committed offset of topic's partition 0
// as admin fetches it, retrying while the client still dials a killed
// node; -1 when none is committed.
func committedOffset(t *testing.T, ctx context.Context, admin *kadm.Client, group, topic string) int64 {
	t.Helper()
	var offsets kadm.OffsetResponses
	eventually(t, "the committed offsets of "+group, func() bool {
		var err error
		offsets, err = admin.FetchOffsets(ctx, group)
		return err == nil
	})
	o, ok := offsets.Lookup(topic, 0)
	if !ok || o.Err != nil {
		return -1
	}
	return o.At
}

// TestClusterGroupCoordinatorKilled: three nodes as processes; a franz-go
// consumer group consumes part of a topic replicated on all three and
// commits what it consumed; the group's coordinator (the leader of its
// __consumer_offsets partition, replicated on all three) is killed with
// kill -9. A new consumer of the group, through the surviving nodes,
// resumes exactly at the committed offset: nothing committed is lost and
// nothing before it is read again.
func TestClusterGroupCoordinatorKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	const topic, group = "group-failover", "group-failover-consumers"
	createReplicatedTopic(t, procs, topic)
	var seeds []string
	for _, p := range procs {
		seeds = append(seeds, p.Addr)
	}
	for _, mt := range metadataOf(t, procs[0].Addr).Topics {
		if mt.Topic != nil && *mt.Topic == "__consumer_offsets" {
			for _, mp := range mt.Partitions {
				if len(mp.Replicas) != 3 {
					t.Fatalf("__consumer_offsets-%d has replicas %v, want 3 (offsets.topic.replication.factor 3)", mp.Partition, mp.Replicas)
				}
			}
		}
	}

	const total, committed = 200, 120
	produced := makeRecords(topic, total)
	for _, r := range produced {
		r.Partition = 0
	}
	produceAll(t, newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryTimeout(testTimeout)), produced)

	consumer := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.FetchMaxPartitionBytes(4096))
	got := consumeAtLeast(t, consumer, committed)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := consumer.CommitRecords(ctx, got[:committed]...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	consumer.Close() // leaves the group: the next consumer joins at once

	var coordinator int32
	eventually(t, "every node names one coordinator of the group", func() bool {
		coordinator = -1
		for _, p := range procs {
			c := groupCoordinator(t, p.Addr, group)
			if c < 1 || coordinator != -1 && c != coordinator {
				return false
			}
			coordinator = c
		}
		return true
	})
	// Any other node refuses the group's requests.
	other := procs[coordinator%3]
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.SetVersion(7)
	fetch.Group = group
	if code := dialRaw(t, other.Addr).mustRoundTrip(fetch).(*kmsg.OffsetFetchResponse).ErrorCode; code != kerr.NotCoordinator.Code {
		t.Fatalf("OffsetFetch on node %s, not the coordinator: code %d, want NOT_COORDINATOR", other.Addr, code)
	}
	procs[coordinator-1].Kill()
	t.Logf("killed node %d, the coordinator of %s, after committing offset %d", coordinator, group, committed)
	var live []string
	for _, p := range procs {
		if p.running() {
			live = append(live, p.Addr)
		}
	}
	eventually(t, "the live nodes name one new coordinator", func() bool {
		a, b := groupCoordinator(t, live[0], group), groupCoordinator(t, live[1], group)
		return a > 0 && a != coordinator && a == b
	})

	resumed := newClient(t, live[0], kgo.SeedBrokers(live...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.RetryTimeout(testTimeout))
	var rest []*kgo.Record
	for len(rest) < total-committed {
		fetches := resumed.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("resumed consumer read %d of %d records before timeout", len(rest), total-committed)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Logf("fetch %s/%d: %v (retried)", topic, partition, err)
		})
		rest = append(rest, fetches.Records()...)
	}
	if first := rest[0].Offset; first != committed {
		t.Fatalf("resumed at offset %d, want the committed %d (lost commit: < ; re-read: >)", first, committed)
	}
	for i, r := range rest {
		if want := int64(committed + i); r.Offset != want || string(r.Value) != string(produced[want].Value) {
			t.Fatalf("resumed record %d: offset %d value %q, want offset %d value %q", i, r.Offset, r.Value, want, produced[want].Value)
		}
	}
	if len(rest) != total-committed {
		t.Fatalf("resumed consumer read %d records, want %d", len(rest), total-committed)
	}

	// The new coordinator takes the group's next commit and serves it.
	if err := resumed.CommitRecords(ctx, rest...); err != nil {
		t.Fatalf("commit through the new coordinator: %v", err)
	}
	admin := newAdmin(t, live[0], kgo.SeedBrokers(live...))
	if at := committedOffset(t, ctx, admin, group, topic); at != total {
		t.Fatalf("committed offset after the failover: %d, want %d", at, total)
	}
}

// TestClusterGroupMemberOutlivesCoordinator: a franz-go consumer stays in
// its group while the group's coordinator is killed with kill -9. The
// offsets it committed before are served by the new coordinator at once,
// and the same member goes on consuming and commits through it.
func TestClusterGroupMemberOutlivesCoordinator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	procs, _ := startMetadataCluster(t, 3)
	const topic, group = "member-outlives", "member-outlives-consumers"
	createReplicatedTopic(t, procs, topic)
	var seeds []string
	for _, p := range procs {
		seeds = append(seeds, p.Addr)
	}
	const total, before = 200, 80
	produced := makeRecords(topic, total)
	for _, r := range produced {
		r.Partition = 0
	}
	produceAll(t, newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryTimeout(testTimeout)), produced)

	consumer := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.RetryTimeout(testTimeout),
		kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(300*time.Millisecond), kgo.FetchMaxPartitionBytes(2048))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var got []*kgo.Record
	for len(got) < before {
		fetches := consumer.PollRecords(ctx, before-len(got))
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout", len(got), before)
		}
		got = append(got, fetches.Records()...)
	}
	if err := consumer.CommitRecords(ctx, got...); err != nil {
		t.Fatalf("commit: %v", err)
	}

	var coordinator int32
	eventually(t, "every node names one coordinator of the group", func() bool {
		coordinator = -1
		for _, p := range procs {
			c := groupCoordinator(t, p.Addr, group)
			if c < 1 || coordinator != -1 && c != coordinator {
				return false
			}
			coordinator = c
		}
		return true
	})
	procs[coordinator-1].Kill()
	t.Logf("killed node %d, the coordinator of %s, with a member consuming", coordinator, group)
	var live []string
	for _, p := range procs {
		if p.running() {
			live = append(live, p.Addr)
		}
	}
	eventually(t, "the live nodes name one new coordinator", func() bool {
		a, b := groupCoordinator(t, live[0], group), groupCoordinator(t, live[1], group)
		return a > 0 && a != coordinator && a == b
	})
	admin := newAdmin(t, live[0], kgo.SeedBrokers(live...), kgo.RetryTimeout(testTimeout))
	if at := committedOffset(t, ctx, admin, group, topic); at != before {
		t.Fatalf("committed offset on the new coordinator: %d, want %d", at, before)
	}

	for len(got) < total {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout", len(got), total)
		}
		got = append(got, fetches.Records()...)
	}
	for i, r := range got {
		if r.Offset != int64(i) {
			t.Fatalf("record %d consumed at offset %d: the member skipped or re-read across the failover", i, r.Offset)
		}
	}
	if err := consumer.CommitRecords(ctx, got...); err != nil {
		t.Fatalf("commit through the new coordinator: %v", err)
	}
	if at := committedOffset(t, ctx, admin, group, topic); at != total {
		t.Fatalf("committed offset after the member's last commit: %d, want %d", at, total)
	}
}
