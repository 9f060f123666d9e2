package replication

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
)

// keyedBatch encodes a v2 record batch of one record with key and value,
// stamped ts (Unix milliseconds).
func keyedBatch(key, value string, ts int64) []byte {
	var b record.Builder
	b.Add(ts, []byte(key), []byte(value))
	batch, err := b.AppendTo(nil)
	if err != nil {
		panic(err) // one uncompressed record: cannot fail
	}
	return batch
}

func TestLiveConfigApply(t *testing.T) {
	ctx := context.Background()
	c := openTestCluster(t, t.TempDir())
	if _, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "inherits", Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "overrides", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "5000"}}); err != nil {
		t.Fatal(err)
	}
	retention := func(topic string) []time.Duration {
		tp, _ := c.Topic(topic)
		var out []time.Duration
		for i := range tp.PartitionCount() {
			out = append(out, tp.Partition(i).Config().RetentionTime)
		}
		return out
	}
	if err := c.AlterBrokerConfigs(ctx, "", map[string]string{"log.retention.ms": "1000"}, false); err != nil {
		t.Fatal(err)
	}
	if got := retention("inherits"); got[0] != time.Second || got[1] != time.Second {
		t.Fatalf("inheriting topic after broker change: %v", got)
	}
	if got := retention("overrides"); got[0] != 5*time.Second {
		t.Fatalf("overriding topic after broker change: %v", got)
	}
	if err := c.AlterTopicConfigs(ctx, "overrides", nil, false); err != nil {
		t.Fatal(err)
	}
	if got := retention("overrides"); got[0] != time.Second {
		t.Fatalf("topic after its override was removed: %v", got)
	}
	if err := c.AlterTopicConfigs(ctx, "inherits", map[string]string{"cleanup.policy": "compact"}, true); err != nil {
		t.Fatal(err)
	}
	tp, _ := c.Topic("inherits")
	if p := tp.Partition(0).Config().CleanupPolicy; p != partition.CleanupDelete {
		t.Fatalf("validate-only changed the policy to %v", p)
	}
}

// waitUntil polls cond every few milliseconds for at most 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestScheduleChangesLive runs in a synctest bubble: time is fake and
// advances only when every goroutine waits, so the retention timer is
// observed exactly.
func TestScheduleChangesLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		c, err := Open(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		time.Sleep(time.Minute)
		if got := c.CleanupStats().RetentionChecks; got != 0 {
			t.Fatalf("retention ran %d times in a minute with a 5-minute interval", got)
		}
		if err := c.AlterBrokerConfigs(ctx, "0", map[string]string{"log.retention.check.interval.ms": "10"}, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(35 * time.Millisecond)
		synctest.Wait()
		if got := c.CleanupStats().RetentionChecks; got != 3 {
			t.Fatalf("%d retention passes in 35ms at a 10ms interval, want 3", got)
		}
	})
}

// TestCleanerCompactsConsumerOffsets checks that the internal offsets
// topic, created compacted by package consumergroup, is compacted by the
// same cleaner as any other.
func TestCleanerCompactsConsumerOffsets(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Cleaner.Backoff = 10 * time.Millisecond
	c, err := Open(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	topic, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "__consumer_offsets", Partitions: 1, ReplicationFactor: 1, Internal: true,
		Configs: map[string]string{"cleanup.policy": "compact", "segment.bytes": "100", "min.cleanable.dirty.ratio": "0.01"}})
	if err != nil {
		t.Fatal(err)
	}
	p := topic.Partition(0)
	now := time.Now().UnixMilli()
	for i := 0; i < 20; i++ {
		if _, err := p.Append(ctx, keyedBatch("group-a/topic/0", "offset", now)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the offsets topic compacted", func() bool { return c.CleanupStats().CompactionRecordsRemoved > 0 })
}
