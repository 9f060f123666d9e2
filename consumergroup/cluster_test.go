package consumergroup

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/replication"
)

// TestClusterView checks the view of a *replication.Cluster as a Cluster:
// misses are nil interfaces, not interfaces holding nil pointers, so the
// coordinator's nil checks hold.
func TestClusterView(t *testing.T) {
	v := viewCluster(openCluster(t, t.TempDir()))
	if tp, ok := v.Topic(OffsetsTopic); ok || tp != nil {
		t.Errorf("Topic of a missing topic = %v, %v; want nil, false", tp, ok)
	}
	req := replication.CreateTopicRequest{Name: OffsetsTopic, Partitions: 3, ReplicationFactor: -1, Internal: true}
	if tp, err := v.CreateTopic(context.Background(), req); err != nil || tp.PartitionCount() != 3 {
		t.Fatalf("CreateTopic = %v, %v", tp, err)
	}
	if tp, err := v.CreateTopic(context.Background(), req); !errors.Is(err, kerr.TopicAlreadyExists) || tp != nil {
		t.Errorf("second CreateTopic = %v, %v; want nil, TOPIC_ALREADY_EXISTS", tp, err)
	}
	tp, ok := v.Topic(OffsetsTopic)
	if !ok || tp.PartitionCount() != 3 {
		t.Fatalf("Topic after creation = %v, %v", tp, ok)
	}
	if node, _ := tp.Partition(2).Leader(); node != 1 {
		t.Errorf("Partition(2).Leader() node = %d, want 1 (this node)", node)
	}
}

// TestOffsetsTopicReplicationFactorCapped checks that the default
// offsets.topic.replication.factor (3) on a single node creates
// __consumer_offsets with one replica rather than refusing it.
func TestOffsetsTopicReplicationFactorCapped(t *testing.T) {
	cl := openCluster(t, t.TempDir())
	cfg := testConfig()
	if cfg.OffsetsTopicReplicationFactor != 3 {
		t.Fatalf("default offsets.topic.replication.factor %d, want 3", cfg.OffsetsTopicReplicationFactor)
	}
	openCoordinator(t, cl, cfg)
	tp, ok := cl.Topic(OffsetsTopic)
	if !ok {
		t.Fatal("no __consumer_offsets")
	}
	for i := range tp.PartitionCount() {
		if r := tp.Partition(i).Replicas(); len(r) != 1 || r[0] != 1 {
			t.Errorf("%s-%d replicas %v, want [1]", OffsetsTopic, i, r)
		}
	}
}
