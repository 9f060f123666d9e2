package meta

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestMigrateLegacy opens a one-node group seeded from a cluster.json in
// the single-node format and checks that the cluster id, topic ids,
// configs and producer ids carry over, and survive a restart.
func TestMigrateLegacy(t *testing.T) {
	ctx := testContext(t)
	self := Member{ID: 0, RaftAddress: "node-0", Host: "127.0.0.1", Port: 9092}
	b, err := os.ReadFile("testdata/legacy/cluster.json")
	if err != nil {
		t.Fatal(err)
	}
	metaDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(metaDir, LegacyFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	seed, ok, err := LoadLegacy(metaDir, self)
	if err != nil || !ok {
		t.Fatalf("LoadLegacy: %v, %v", ok, err)
	}

	c := newTestCluster(t)
	n := c.start(testConfig(self, []Member{self}), Options{Seed: seed})
	s := waitState(ctx, t, n.g, "initialised", (*State).Initialized)
	if s.ClusterID != "m3L0B1g4RkK9x2rQpZ7c1w" {
		t.Fatalf("cluster id %q", s.ClusterID)
	}
	want := map[string]struct {
		id         string
		partitions int
		configs    map[string]string
		internal   bool
	}{
		"__consumer_offsets": {"6f1b2c3d4e5f60718293a4b5c6d7e8f9", 50, map[string]string{"cleanup.policy": "compact"}, true},
		"orders":             {"0123456789abcdef0123456789abcdef", 3, map[string]string{"retention.ms": "86400000"}, false},
		"plain":              {"fedcba9876543210fedcba9876543210", 1, map[string]string{}, false},
	}
	if !reflect.DeepEqual(s.TopicNames(), []string{"__consumer_offsets", "orders", "plain"}) {
		t.Fatalf("topics %v", s.TopicNames())
	}
	for name, w := range want {
		tp, _ := s.Topic(name)
		if tp.ID.String() != w.id || len(tp.Partitions) != w.partitions || !reflect.DeepEqual(tp.Configs, w.configs) || tp.Internal != w.internal {
			t.Fatalf("topic %s: %+v", name, tp)
		}
		for i, p := range tp.Partitions {
			if !reflect.DeepEqual(p.Replicas, []int32{0}) {
				t.Fatalf("partition %s-%d on %v", name, i, p.Replicas)
			}
		}
	}
	if s.Brokers.Default["log.retention.ms"] != "3600000" || s.BrokerConfigsOf(0)["log.cleaner.enable"] != "false" {
		t.Fatalf("broker configs %+v", s.Brokers)
	}
	if n, ok := s.Node(0); !ok || n.Host != "127.0.0.1" || n.Port != 9092 {
		t.Fatalf("nodes %+v", s.Nodes)
	}
	res := c.mustPropose(ctx, &AllocateProducerIDBlock{NodeID: 0, Size: 1000})
	if res.ProducerIDs.First != 3000 {
		t.Fatalf("first producer id after migration %d, want 3000 (the old block end)", res.ProducerIDs.First)
	}
	before := c.converge(ctx, res.Version)

	// Restarted with the seed again (cluster.json not yet renamed), the
	// node keeps its state: the seed only matters for InitCluster.
	c.stop(0)
	n = c.start(n.cfg, Options{Seed: seed})
	if got := c.converge(ctx, res.Version); string(got) != string(before) {
		t.Fatalf("state after restart:\n%s\nwant\n%s", got, before)
	}
}

func TestLoadLegacyMissingAndBad(t *testing.T) {
	self := Member{ID: 1, RaftAddress: "r", Host: "h", Port: 1}
	if _, ok, err := LoadLegacy(t.TempDir(), self); ok || err != nil {
		t.Fatalf("missing file: %v, %v", ok, err)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"not json", `{`, "decode"},
		{"version", `{"version":2,"cluster_id":"c"}`, "version 2"},
		{"no cluster id", `{"version":1}`, "no cluster id"},
		{"bad topic id", `{"version":1,"cluster_id":"c","topics":[{"name":"t","id":"xyz","partitions":1}]}`, "hex"},
		{"no partitions", `{"version":1,"cluster_id":"c","topics":[{"name":"t","id":"0123456789abcdef0123456789abcdef","partitions":0}]}`, "partitions"},
		{"bad broker id", `{"version":1,"cluster_id":"c","broker_configs":{"x":{}}}`, "node id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, LegacyFile), []byte(tc.in), 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadLegacy(dir, self)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
