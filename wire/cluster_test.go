package wire

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/replication"
)

// TestClusterView checks the view of a *replication.Cluster as a Cluster:
// misses are nil interfaces, not interfaces holding nil pointers, and the
// lookups on the produce and fetch paths do not allocate.
func TestClusterView(t *testing.T) {
	cfg := replication.DefaultConfig()
	cfg.DataDir = t.TempDir()
	c, err := replication.Open(cfg, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	if _, err := c.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "t", Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	v := viewCluster(c)

	if tp, ok := v.Topic("missing"); ok || tp != nil {
		t.Errorf("Topic(missing) = %v, %v; want nil, false", tp, ok)
	}
	if p, err := v.Partition("t", 2); !errors.Is(err, kerr.UnknownTopicOrPartition) || p != nil {
		t.Errorf("Partition(t, 2) = %v, %v; want nil, UNKNOWN_TOPIC_OR_PARTITION", p, err)
	}
	if _, err := v.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err == nil {
		t.Error("CreateTopic of an existing topic succeeded")
	}
	tp, ok := v.Topic("t")
	if !ok || tp.Name() != "t" || tp.PartitionCount() != 2 || tp.Partition(1) == nil {
		t.Fatalf("Topic(t) = %v, %v", tp, ok)
	}
	if topics := v.Topics(); len(topics) != 1 || topics[0].Name() != "t" {
		t.Errorf("Topics() = %v", topics)
	}

	allocs := testing.AllocsPerRun(100, func() {
		tp, _ := v.Topic("t")
		_ = tp.Partition(1).LeaderEpoch()
		p, _ := v.Partition("t", 0)
		_ = p.Offsets()
	})
	if allocs != 0 {
		t.Errorf("topic and partition lookups allocate %v times, want 0", allocs)
	}
}
