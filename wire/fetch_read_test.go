package wire

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

// TestLongPollRereadsOnlyChangedPartitions checks that a fetch reading
// again after a wake-up reuses what it read of a partition whose offsets did
// not move, reads again one that did, and answers what a fresh read would.
func TestLongPollRereadsOnlyChangedPartitions(t *testing.T) {
	ts := startTestServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ts.cluster.CreateTopic(ctx, replication.CreateTopicRequest{Name: "t", Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	appendOne := func(partition int32, value string) {
		t.Helper()
		p, err := ts.cluster.Partition("t", partition)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Append(ctx, oneRecordBatch([]byte(value)))
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	newFetch := func() *fetch {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(12)
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 60_000, 1<<20, 50<<20
		f := &fetch{s: ts.Server, req: req, room: math.MaxInt}
		for _, p := range []int32{0, 1} {
			f.res.targets = append(f.res.targets, fetchTarget{key: sessionKey{topic: "t", partition: p}, maxBytes: 1 << 20, currentLeaderEpoch: -1})
		}
		f.resolvePartitions()
		t.Cleanup(f.release)
		return f
	}
	records := func(resp *kmsg.FetchResponse, partition int32) []byte {
		t.Helper()
		for _, rp := range resp.Topics[0].Partitions {
			if rp.Partition == partition {
				if rp.ErrorCode != 0 {
					t.Fatalf("partition %d: error %d", partition, rp.ErrorCode)
				}
				return rp.RecordBatches
			}
		}
		t.Fatalf("partition %d missing from the response", partition)
		return nil
	}
	same := func(a, b []byte) bool { return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0] }
	check := func(f *fetch, resp *kmsg.FetchResponse) {
		t.Helper()
		fresh, _, _ := newFetch().read()
		for _, p := range []int32{0, 1} {
			if got, want := records(resp, p), records(fresh, p); string(got) != string(want) {
				t.Fatalf("partition %d: %d bytes after a reread, a fresh read gives %d", p, len(got), len(want))
			}
		}
	}

	appendOne(0, "first")
	f := newFetch()
	first, n, final := f.read()
	if final || n == 0 || len(records(first, 1)) != 0 {
		t.Fatalf("first read: %d bytes, final %v, partition 1 has %d bytes", n, final, len(records(first, 1)))
	}
	check(f, first)

	appendOne(1, "second")
	second, _, _ := f.read()
	if !same(records(first, 0), records(second, 0)) {
		t.Fatal("partition 0 was read again though it did not change")
	}
	if len(records(second, 1)) == 0 {
		t.Fatal("partition 1 was not read again after an append")
	}
	check(f, second)

	appendOne(0, "third")
	third, _, _ := f.read()
	if same(records(second, 0), records(third, 0)) || len(records(third, 0)) <= len(records(second, 0)) {
		t.Fatal("partition 0 was not read again after an append")
	}
	if !same(records(second, 1), records(third, 1)) {
		t.Fatal("partition 1 was read again though it did not change")
	}
	check(f, third)
}
