package replication

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/configs"
)

func openTestCluster(t *testing.T, dir string) *Cluster {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = dir
	c, err := Open(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestTopicLifecycleSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := openTestCluster(t, dir)
	created, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "orders", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{"segment.bytes": "1048576"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "gone", Partitions: 1, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePartitions(ctx, "orders", 5, false); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	clusterID := c.ClusterID()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}

	c = openTestCluster(t, dir)
	if c.ClusterID() != clusterID {
		t.Fatalf("cluster id changed: %s -> %s", clusterID, c.ClusterID())
	}
	topics := c.Topics()
	if len(topics) != 1 || topics[0].Name() != "orders" {
		t.Fatalf("topics after restart: %v", topics)
	}
	got := topics[0]
	if got.ID() != created.ID() || got.PartitionCount() != 5 || got.Configs()["segment.bytes"] != "1048576" {
		t.Fatalf("orders after restart: id %x partitions %d configs %v", got.ID(), got.PartitionCount(), got.Configs())
	}
	if byID, ok := c.TopicByID(created.ID()); !ok || byID.Name() != "orders" {
		t.Fatal("topic not found by id")
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "gone-0")); !os.IsNotExist(err) {
		t.Fatalf("deleted topic's data still there: %v", err)
	}
}

func TestCreateTopicErrors(t *testing.T) {
	c := openTestCluster(t, t.TempDir())
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "exists", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  CreateTopicRequest
		want *kerr.Error
	}{
		{"exists", CreateTopicRequest{Name: "exists", Partitions: 1, ReplicationFactor: 1}, kerr.TopicAlreadyExists},
		{"empty name", CreateTopicRequest{Name: "", Partitions: 1, ReplicationFactor: 1}, kerr.InvalidTopicException},
		{"bad character", CreateTopicRequest{Name: "a/b", Partitions: 1, ReplicationFactor: 1}, kerr.InvalidTopicException},
		{"dot dot", CreateTopicRequest{Name: "..", Partitions: 1, ReplicationFactor: 1}, kerr.InvalidTopicException},
		{"zero partitions", CreateTopicRequest{Name: "z", Partitions: 0, ReplicationFactor: 1}, kerr.InvalidPartitions},
		{"replication factor 3", CreateTopicRequest{Name: "r", Partitions: 1, ReplicationFactor: 3}, kerr.InvalidReplicationFactor},
		{"unknown config", CreateTopicRequest{Name: "c", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"no.such": "1"}}, kerr.InvalidConfig},
		{"bad config value", CreateTopicRequest{Name: "c", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "soon"}}, kerr.InvalidConfig},
		{"bad timestamp type", CreateTopicRequest{Name: "c", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"message.timestamp.type": "Now"}}, kerr.InvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateTopic(ctx, tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	if len(c.Topics()) != 1 {
		t.Fatalf("failed creates left topics: %v", c.Topics())
	}
	if _, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "v", Partitions: 2, ReplicationFactor: 1, ValidateOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Topic("v"); ok {
		t.Fatal("validate-only created the topic")
	}
}

func TestCreatePartitionsErrors(t *testing.T) {
	c := openTestCluster(t, t.TempDir())
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "t", Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	for _, count := range []int32{1, 2} {
		if err := c.CreatePartitions(ctx, "t", count, false); !errors.Is(err, kerr.InvalidPartitions) {
			t.Fatalf("count %d: %v", count, err)
		}
	}
	if err := c.CreatePartitions(ctx, "missing", 3, false); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("missing topic: %v", err)
	}
	if _, err := c.Partition("t", 2); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("partition 2 of 2: %v", err)
	}
}

func TestProducerIDsNeverRepeat(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	seen := map[int64]bool{}
	for restart := 0; restart < 3; restart++ {
		c := openTestCluster(t, dir)
		for i := 0; i < producerIDBlockSize+10; i++ {
			id, err := c.AllocateProducerID(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if seen[id] {
				t.Fatalf("producer id %d handed out twice (restart %d)", id, restart)
			}
			seen[id] = true
		}
		// Close writes nothing about producer ids: a block is committed
		// in the metadata before its first id is handed out, so a crash
		// here would not lead to reuse either. (The data dir's Raft store
		// is locked while open, so the test cannot reopen it unclosed.)
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOrphanPartitionDirsRemoved(t *testing.T) {
	dir := t.TempDir()
	c := openTestCluster(t, dir)
	if _, err := c.CreateTopic(context.Background(), CreateTopicRequest{Name: "keep-me", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	c.Close(context.Background())
	orphan := filepath.Join(dir, "topics", "deleted-0")
	if err := os.MkdirAll(orphan, 0o755); err != nil {
		t.Fatal(err)
	}
	openTestCluster(t, dir)
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatalf("orphan dir kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "keep-me-0")); err != nil {
		t.Fatalf("topic dir removed: %v", err)
	}
}

func TestDescribeTopicConfigs(t *testing.T) {
	c := openTestCluster(t, t.TempDir())
	if _, err := c.CreateTopic(context.Background(), CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000"}}); err != nil {
		t.Fatal(err)
	}
	entries, err := c.DescribeTopicConfigs("t")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]configs.Entry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	if e := byName["retention.ms"]; e.Value != "1000" || e.Source != kmsg.ConfigSourceDynamicTopicConfig || len(e.Synonyms) < 2 {
		t.Fatalf("retention.ms: %+v", e)
	}
	if e := byName["segment.bytes"]; e.Value != "1073741824" || e.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("segment.bytes: %+v", e)
	}
	if _, err := c.DescribeTopicConfigs("missing"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("missing: %v", err)
	}
}

func TestInternalTopic(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := openTestCluster(t, dir)
	if _, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "__consumer_offsets", Partitions: 2, ReplicationFactor: 1, Internal: true, Configs: map[string]string{"cleanup.policy": "compact"}}); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	c = openTestCluster(t, dir)
	topic, ok := c.Topic("__consumer_offsets")
	if !ok || !topic.Internal() {
		t.Fatalf("internal flag lost across restart: %v %v", ok, topic)
	}
	if err := c.DeleteTopic(ctx, "__consumer_offsets"); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("deleting an internal topic: %v", err)
	}
}
