package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/partition"
)

// TestPartitionAppendWait checks the handle's two steps: Append fixes the
// place (offsets in order across appends), Wait returns once the batches
// are committed and readable; an Append whose ctx is done stores nothing.
func TestPartitionAppendWait(t *testing.T) {
	ctx := context.Background()
	c := openTestCluster(t, t.TempDir())
	topic, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := topic.Partition(0)
	now := time.Now().UnixMilli()
	first, err := p.Append(ctx, keyedBatch("k", "1", now))
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.Append(ctx, keyedBatch("k", "2", now))
	if err != nil {
		t.Fatal(err)
	}
	if first.BaseOffset != 0 || second.BaseOffset != 1 {
		t.Fatalf("base offsets %d, %d; want 0, 1 (call order)", first.BaseOffset, second.BaseOffset)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, a := range []Appended{second, first} {
		if err := a.Wait(wctx); err != nil {
			t.Fatalf("wait for offset %d: %v", a.BaseOffset, err)
		}
	}
	if hwm := p.Offsets().HighWatermark; hwm != 2 {
		t.Fatalf("high watermark %d after both commits, want 2", hwm)
	}
	rr, err := p.Read(nil, partition.ReadRequest{Offset: 0, MaxBytes: 1 << 20, MinOneBatch: true})
	if err != nil || len(rr.Records) == 0 {
		t.Fatalf("read committed batches: %d bytes, %v", len(rr.Records), err)
	}

	cancelled, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if _, err := p.Append(cancelled, keyedBatch("k", "3", now)); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a cancelled ctx: %v, want context.Canceled", err)
	}
	if end := p.Offsets().LogEnd; end != 2 {
		t.Fatalf("log end %d after a refused append, want 2", end)
	}
	if _, err := p.Append(ctx, []byte("not a batch")); !errors.Is(err, kerr.CorruptMessage) {
		t.Fatalf("append of garbage: %v, want CORRUPT_MESSAGE", err)
	}
}

// TestLeaderEpochIsTheTerm checks that a partition's leader epoch is its
// Raft group's term, and that this node leads what it alone replicates.
func TestLeaderEpochIsTheTerm(t *testing.T) {
	c := openTestCluster(t, t.TempDir())
	if _, err := c.CreateTopic(context.Background(), CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	p, err := c.Partition("t", 0)
	if err != nil {
		t.Fatal(err)
	}
	leader, epoch := p.Leader()
	if leader != c.NodeID() || epoch < 1 || epoch != p.group.Term() || p.LeaderEpoch() != epoch {
		t.Fatalf("leader %d epoch %d (term %d), want this node %d and the term", leader, epoch, p.group.Term(), c.NodeID())
	}
}
