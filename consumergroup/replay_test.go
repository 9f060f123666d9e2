package consumergroup

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication"
)

// TestReplayLog: ReplayLog hands over every committed record in offset
// order across reads of replayChunk bytes, and stops early, with nil,
// once stopped says so.
func TestReplayLog(t *testing.T) {
	v := viewCluster(openCluster(t, t.TempDir()))
	tp, err := v.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "replayed", Partitions: 1, ReplicationFactor: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := tp.Partition(0)
	value := make([]byte, 4096)
	const batches, perBatch = 40, 10 // 1.6 MB: more than one read
	for i := range batches {
		var recs []kv
		for j := range perBatch {
			recs = append(recs, kv{key: fmt.Appendf(nil, "k%d", i*perBatch+j), value: value})
		}
		a, err := h.Append(context.Background(), encodeBatch(recs))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err = ReplayLog(h, func() bool { return false }, func(hdr log.BatchHeader, rec *record.Record) error {
		if off := hdr.BaseOffset + int64(rec.OffsetDelta); off != int64(len(got)) {
			return fmt.Errorf("record at offset %d after %d records", off, len(got))
		}
		got = append(got, string(rec.Key))
		return nil
	})
	if err != nil || len(got) != batches*perBatch || got[len(got)-1] != fmt.Sprintf("k%d", batches*perBatch-1) {
		t.Fatalf("replayed %d records (last %q), error %v; want %d", len(got), got[len(got)-1:], err, batches*perBatch)
	}

	reads := 0
	err = ReplayLog(h, func() bool { reads++; return reads > 1 }, func(log.BatchHeader, *record.Record) error { return nil })
	if err != nil || reads != 2 {
		t.Fatalf("stopped after the first read: %d checks, error %v; want 2 checks, nil", reads, err)
	}
	want := errors.New("refused")
	if err := ReplayLog(h, func() bool { return false }, func(log.BatchHeader, *record.Record) error { return want }); !errors.Is(err, want) {
		t.Fatal("an error of fn did not end the replay")
	}
}
