package replication

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/configs"
)

func brokerEntries(c *Cluster) map[string]configs.Entry {
	out := map[string]configs.Entry{}
	for _, e := range c.DescribeBrokerConfigs() {
		out[e.Name] = e
	}
	return out
}

func TestDynamicBrokerConfigsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := openTestCluster(t, dir)
	if err := c.AlterBrokerConfigs(ctx, "", map[string]string{"log.retention.hours": "2", "log.cleaner.backoff.ms": "250"}, false); err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	if err := c.IncrementalAlterBrokerConfigs(ctx, "1", []configs.Op{
		{Name: "log.cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: str("compact")},
		{Name: "log.retention.check.interval.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("100")},
	}, false); err != nil {
		t.Fatal(err)
	}
	check := func(c *Cluster) {
		t.Helper()
		got := c.cleaner.Config()
		if got.Backoff != 250*time.Millisecond || got.RetentionCheckInterval != 100*time.Millisecond {
			t.Errorf("schedules %+v", got)
		}
		e := brokerEntries(c)
		if v := e["log.retention.hours"]; v.Value != "2" || v.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig || v.ReadOnly {
			t.Errorf("log.retention.hours %+v", v)
		}
		if v := e["log.retention.ms"]; v.Value != "7200000" || v.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Errorf("log.retention.ms %+v", v)
		}
		if v := e["log.cleanup.policy"]; v.Value != "delete,compact" || v.Source != kmsg.ConfigSourceDynamicBrokerConfig {
			t.Errorf("log.cleanup.policy %+v", v)
		}
		if v := e["node.id"]; !v.ReadOnly {
			t.Errorf("node.id not read-only: %+v", v)
		}
		// New topics inherit the dynamic defaults.
		topic, err := c.CreateTopic(ctx, CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1, ValidateOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if topic.config.RetentionTime != 2*time.Hour || topic.config.CleanupPolicy != 3 {
			t.Errorf("new topic config %+v", topic.config)
		}
	}
	check(c)
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	check(openTestCluster(t, dir))
}

func TestAlterBrokerConfigsErrors(t *testing.T) {
	ctx := context.Background()
	c := openTestCluster(t, t.TempDir())
	tests := []struct {
		name    string
		broker  string
		configs map[string]string
		want    *kerr.Error
		message string
	}{
		{"read-only", "", map[string]string{"log.dirs": "/tmp"}, kerr.InvalidConfig, "read-only"},
		{"unknown", "", map[string]string{"log.nonsense": "1"}, kerr.InvalidConfig, "cannot be changed"},
		{"bad value", "1", map[string]string{"log.retention.bytes": "lots"}, kerr.InvalidConfig, "log.retention.bytes"},
		{"another broker", "7", map[string]string{"log.retention.bytes": "1"}, kerr.InvalidRequest, "not a registered node"},
		{"cross-config", "", map[string]string{"log.cleaner.min.compaction.lag.ms": "10", "log.cleaner.max.compaction.lag.ms": "5"}, kerr.InvalidConfig, "max.compaction.lag.ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.AlterBrokerConfigs(ctx, tt.broker, tt.configs, false)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("err %v, want %v mentioning %q", err, tt.want, tt.message)
			}
		})
	}
	if err := c.AlterBrokerConfigs(ctx, "", map[string]string{"log.retention.bytes": "1"}, true); err != nil {
		t.Fatal(err)
	}
	if v := brokerEntries(c)["log.retention.bytes"]; v.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("validate-only changed the config: %+v", v)
	}
}

func TestOldMetadataFileLoads(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "meta"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := `{"version": 1, "cluster_id": "abc", "producer_id_block_end": 1000, "topics": []}`
	if err := os.WriteFile(filepath.Join(dir, "meta", "cluster.json"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	c := openTestCluster(t, dir)
	if c.ClusterID() != "abc" || len(brokerEntries(c)) == 0 {
		t.Fatal("old metadata file not loaded")
	}
}

// TestMigratedNodeConfigsMoveToThisNode checks the migration of a
// single-node cluster.json whose per-node dynamic configs name node 0 (the
// node.id default then) into a node with id 1: they become node 1's, and
// a stored config this version refuses is dropped.
func TestMigratedNodeConfigsMoveToThisNode(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "meta"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := `{"version": 1, "cluster_id": "abc", "producer_id_block_end": 0, "topics": [],
		"broker_configs": {"0": {"log.retention.bytes": "5", "no.such.config": "1"}}}`
	if err := os.WriteFile(filepath.Join(dir, "meta", "cluster.json"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	c := openTestCluster(t, dir)
	e := brokerEntries(c)["log.retention.bytes"]
	if e.Value != "5" || e.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("log.retention.bytes after migration: %+v, want 5 from this node's dynamic configs", e)
	}
	if got := c.group.State().BrokerConfigsOf(1); len(got) != 1 {
		t.Fatalf("node 1's stored configs %v, want only log.retention.bytes", got)
	}
}
