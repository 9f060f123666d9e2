package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCompaction updates ten keys twenty times each, deletes three with
// tombstones, and waits for the cleaner to leave the newest value per key
// and, past delete.retention.ms, no tombstones.
func TestCompaction(t *testing.T) {
	srv := startServer(t, fastRetention())
	adm := newAdmin(t, srv.Addr)
	const topic = "compacted"
	createTopicWith(t, adm, topic, map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "400", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0",
	})
	cl := newClient(t, srv.Addr, kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const keys, rounds = 10, 20
	produced := 0
	for round := 0; round < rounds; round++ {
		var batch []*kgo.Record
		for k := 0; k < keys; k++ {
			batch = append(batch, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%d", k)), Value: []byte(fmt.Sprintf("round-%d", round))})
		}
		produceAll(t, cl, batch) // one batch (about 260 bytes) per round, one segment each
		produced += keys
	}
	var tombstones []*kgo.Record
	for k := 0; k < 3; k++ {
		tombstones = append(tombstones, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%d", k))})
	}
	produceAll(t, cl, tombstones)
	// A last record rolls the tombstones out of the active segment, which
	// the cleaner never touches.
	produceAll(t, cl, []*kgo.Record{{Topic: topic, Key: []byte("sentinel"), Value: []byte("end")}})
	produced += 4

	want := map[string]string{"sentinel": "end"}
	for k := 3; k < keys; k++ {
		want[fmt.Sprintf("key-%d", k)] = fmt.Sprintf("round-%d", rounds-1)
	}
	var last []*kgo.Record
	compacted := func() bool {
		last = readPartition(t, srv.Addr, topic)
		seen := map[string]int{}
		for _, r := range last {
			seen[string(r.Key)]++
			if r.Value == nil {
				// delete.retention.ms is 0: the pass after the one that
				// keeps a tombstone removes it. Until then the log is
				// still changing under readers.
				return false
			}
			if want[string(r.Key)] != string(r.Value) {
				return false
			}
		}
		for k := range want {
			if seen[k] != 1 {
				return false
			}
		}
		return len(last) < produced
	}
	waitFor(t, "newest value per key only", 20*time.Second, compacted)
	if s := srv.Cluster.CleanupStats(); s.CompactionRuns == 0 || s.CompactionRecordsRemoved == 0 {
		t.Errorf("cleanup stats %+v", s)
	}
	t.Logf("%d records after compaction of %d produced", len(last), produced)
	t.Run("kcat", func(t *testing.T) {
		out := runKcat(t, kcatPath(t), "", "-b", srv.Addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k=%s\\n")
		var want strings.Builder
		for _, r := range last {
			fmt.Fprintf(&want, "%s=%s\n", r.Key, r.Value)
		}
		if out != want.String() {
			t.Errorf("kcat read:\n%s\nwant:\n%s", out, want.String())
		}
	})
}
