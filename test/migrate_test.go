package test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// legacyManifest is testdata/legacy-v1/manifest.json: what the generator
// recorded of the data dir it wrote.
type legacyManifest struct {
	TopicID              string `json:"topic_id"`
	ProducerID           int64  `json:"producer_id"`
	IdempotentBatch      string `json:"idempotent_batch"`
	IdempotentBaseOffset int64  `json:"idempotent_base_offset"`
}

// copyTree copies the directory tree from into to.
func copyTree(tb testing.TB, from, to string) {
	tb.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		tb.Fatalf("copy %s: %v", from, err)
	}
}

// TestMigrateSingleNodeDataDir opens a data dir written by single-node
// Sluice (cluster.json, no metadata Raft group): its cluster id, topic
// ids, configs, records, committed group offsets and producer state must
// all be there, cluster.json renamed once migrated, and a second restart
// must not seed again.
func TestMigrateSingleNodeDataDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	copyTree(t, filepath.Join("testdata", "legacy-v1", "data"), dir)
	legacy, err := os.ReadFile(filepath.Join(dir, "meta", "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var old struct {
		ClusterID          string `json:"cluster_id"`
		ProducerIDBlockEnd int64  `json:"producer_id_block_end"`
	}
	if err := json.Unmarshal(legacy, &old); err != nil {
		t.Fatal(err)
	}
	mb, err := os.ReadFile(filepath.Join("testdata", "legacy-v1", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest legacyManifest
	if err := json.Unmarshal(mb, &manifest); err != nil {
		t.Fatal(err)
	}

	srv := startServer(t, withDataDir(dir), func(c *serverConfig) { c.Groups.OffsetsTopicPartitions = 2 })
	if _, err := os.Stat(filepath.Join(dir, "meta", "cluster.json")); !os.IsNotExist(err) {
		t.Fatalf("cluster.json still there after migration: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "meta", "cluster.json.migrated")); err != nil {
		t.Fatalf("cluster.json.migrated: %v", err)
	}

	for restart := 0; restart < 2; restart++ {
		if restart == 1 {
			srv.stop()
			srv.start(srv.Addr)
		}
		if got := srv.Cluster.ClusterID(); got != old.ClusterID {
			t.Fatalf("cluster id %s, want the legacy %s", got, old.ClusterID)
		}
		adm := newAdmin(t, srv.Addr)
		topics, err := adm.ListTopics(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		orders := topics["orders"]
		if id := orders.ID; hex.EncodeToString(id[:]) != manifest.TopicID || len(orders.Partitions) != 2 {
			t.Fatalf("orders: id %x, %d partitions; want id %s, 2 partitions", orders.ID, len(orders.Partitions), manifest.TopicID)
		}
		wantConfig(t, describeTopic(t, adm, "orders"), "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
		rcs, err := adm.DescribeBrokerConfigs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, rc := range rcs {
			for _, c := range rc.Configs {
				if c.Key == "log.retention.bytes" && c.Value != nil && *c.Value == "1073741824" {
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("cluster default log.retention.bytes=1073741824 lost: %+v", rcs)
		}

		offsets, err := adm.FetchOffsets(ctx, "legacy-group")
		if err != nil {
			t.Fatal(err)
		}
		for p, want := range map[int32]int64{0: 4, 1: 2} {
			if o, ok := offsets.Lookup("orders", p); !ok || o.At != want {
				t.Fatalf("legacy-group orders/%d committed %+v, want %d", p, o, want)
			}
		}

		cl := newClient(t, srv.Addr, consumeFromStart("orders")...)
		got := byPartition(consumeN(t, cl, 11))
		if len(got[0]) != 6 || len(got[1]) != 5 || string(got[0][5].Value) != "once" {
			t.Fatalf("records after migration: %d in orders/0, %d in orders/1", len(got[0]), len(got[1]))
		}
		cl.Close()

		// The producer state came along: the legacy idempotent batch sent
		// again is a duplicate, answered with its original offset.
		batch, err := hex.DecodeString(manifest.IdempotentBatch)
		if err != nil {
			t.Fatal(err)
		}
		c := dialRaw(t, srv.Addr)
		keys := apiVersions(t, srv.Addr)
		pr := rawProduce(t, c, keys, "orders", 0, batch)
		if pr.ErrorCode != 0 || pr.BaseOffset != manifest.IdempotentBaseOffset {
			t.Fatalf("legacy batch again: code %d base offset %d, want a duplicate at %d", pr.ErrorCode, pr.BaseOffset, manifest.IdempotentBaseOffset)
		}
		if end := rawEndOffset(t, c, keys, "orders", 0); end != manifest.IdempotentBaseOffset+1 {
			t.Fatalf("orders/0 ends at %d after a duplicate, want %d", end, manifest.IdempotentBaseOffset+1)
		}
		init := kmsg.NewPtrInitProducerIDRequest()
		init.TransactionTimeoutMillis = -1
		ir := c.mustRoundTrip(init).(*kmsg.InitProducerIDResponse)
		if ir.ErrorCode != 0 || ir.ProducerID < old.ProducerIDBlockEnd {
			t.Fatalf("InitProducerId after migration: code %d id %d, want an id from %d on", ir.ErrorCode, ir.ProducerID, old.ProducerIDBlockEnd)
		}
	}
}
