package test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/cleaner"
)

// fastRetention checks retention every 200ms and runs the cleaner every
// 200ms.
func fastRetention() serverOption {
	return withCleaner(func(c *cleaner.Config) {
		c.RetentionCheckInterval = 200 * time.Millisecond
		c.Backoff = 200 * time.Millisecond
	})
}

// createTopicWith creates a one-partition topic with configs.
func createTopicWith(tb testing.TB, adm *kadm.Client, topic string, configs map[string]string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ptrs := map[string]*string{}
	for k, v := range configs {
		ptrs[k] = ptr(v)
	}
	resp, err := adm.CreateTopic(ctx, 1, 1, ptrs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		tb.Fatalf("create %s: %v", topic, err)
	}
}

// produceBatches produces each record in a request of its own, so each is
// its own batch (and, with a small segment.bytes, its own segment).
func produceBatches(tb testing.TB, cl *kgo.Client, records []*kgo.Record) {
	tb.Helper()
	for _, r := range records {
		produceAll(tb, cl, []*kgo.Record{r})
	}
}

// startOffset returns partition 0's log start offset (ListOffsets
// earliest).
func startOffset(tb testing.TB, adm *kadm.Client, topic string) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	listed, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		tb.Fatalf("list start offsets of %s: %v", topic, err)
	}
	o, ok := listed.Lookup(topic, 0)
	if !ok || o.Err != nil {
		tb.Fatalf("start offset of %s: %v", topic, o.Err)
	}
	return o.Offset
}

// waitFor polls cond until it holds, failing the test after deadline. The
// cleanup schedules run on their own timers; this only watches their
// observable effect.
func waitFor(tb testing.TB, what string, deadline time.Duration, cond func() bool) {
	tb.Helper()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	timeout := time.After(deadline)
	for !cond() {
		select {
		case <-ticker.C:
		case <-timeout:
			tb.Fatalf("%s: not after %s", what, deadline)
		}
	}
}

// readPartition consumes partition 0 of topic from its start up to the
// high watermark and returns the records.
func readPartition(tb testing.TB, addr, topic string) []*kgo.Record {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(tb, addr)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		tb.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	var records []*kgo.Record
	for end.Offset > 0 && (len(records) == 0 || records[len(records)-1].Offset < end.Offset-1) {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("read %s: %d records before timeout", topic, len(records))
		}
		fetches.EachError(func(_ string, _ int32, err error) { tb.Fatalf("read %s: %v", topic, err) })
		records = append(records, fetches.Records()...)
	}
	return records
}

// fetchCode fetches topic/0 at offset with a raw Fetch v12 and returns the
// partition's error code.
func fetchCode(tb testing.TB, addr, topic string, offset int64) int16 {
	tb.Helper()
	c := dialRaw(tb, addr)
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.mustRoundTrip(req).(*kmsg.FetchResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func valueRecord(topic string, i int, ts time.Time) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 200))), Timestamp: ts}
}

// TestRetentionByTime produces records stamped three days ago, then new
// ones, into one-batch segments, and waits for retention (1 day) to delete
// exactly the old segments.
func TestRetentionByTime(t *testing.T) {
	srv := startServer(t, fastRetention())
	adm := newAdmin(t, srv.Addr)
	const topic = "retention-time"
	createTopicWith(t, adm, topic, map[string]string{"segment.bytes": "100", "retention.ms": "86400000"})
	cl := newClient(t, srv.Addr)
	old := time.Now().Add(-72 * time.Hour)
	var records []*kgo.Record
	for i := 0; i < 10; i++ {
		records = append(records, valueRecord(topic, i, old.Add(time.Duration(i)*time.Second)))
	}
	for i := 10; i < 20; i++ {
		records = append(records, valueRecord(topic, i, time.Now()))
	}
	produceBatches(t, cl, records)

	waitFor(t, "log start offset at the first new record", 10*time.Second, func() bool { return startOffset(t, adm, topic) == 10 })
	compareRecords(t, "after retention", readPartition(t, srv.Addr, topic), records[10:])
	wantCode(t, "fetch below the log start", fetchCode(t, srv.Addr, topic, 0), kerr.OffsetOutOfRange)
	t.Run("kcat", func(t *testing.T) {
		// librdkafka's "beginning" is the log start offset too.
		out := runKcat(t, kcatPath(t), "", "-b", srv.Addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o\\n")
		if want := "10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n"; out != want {
			t.Errorf("kcat offsets:\n%s\nwant:\n%s", out, want)
		}
	})
	if s := srv.Cluster.CleanupStats(); s.RetentionSegmentsDeleted < 10 || s.RetentionBytesDeleted <= 0 {
		t.Errorf("cleanup stats %+v", s)
	}
	// The new records are within retention: another pass keeps them.
	checks := srv.Cluster.CleanupStats().RetentionChecks
	waitFor(t, "two more retention passes", 10*time.Second, func() bool { return srv.Cluster.CleanupStats().RetentionChecks >= checks+2 })
	if got := startOffset(t, adm, topic); got != 10 {
		t.Errorf("log start offset %d after more passes, want 10", got)
	}
}

// TestRetentionBytes bounds a partition's size and watches the oldest
// segments go. Batches are uncompressed so their size is known.
func TestRetentionBytes(t *testing.T) {
	srv := startServer(t, fastRetention())
	adm := newAdmin(t, srv.Addr)
	const topic = "retention-bytes"
	createTopicWith(t, adm, topic, map[string]string{"segment.bytes": "300", "retention.ms": "-1", "retention.bytes": "1000"})
	cl := newClient(t, srv.Addr, kgo.ProducerBatchCompression(kgo.NoCompression()))
	var records []*kgo.Record
	for i := 0; i < 20; i++ {
		records = append(records, valueRecord(topic, i, time.Now()))
	}
	produceBatches(t, cl, records)
	// Each batch is about 280 bytes: 1000 bytes hold 3 segments at most,
	// plus the active one.
	waitFor(t, "log start offset past the oldest segments", 10*time.Second, func() bool { return startOffset(t, adm, topic) >= 16 })
	start := startOffset(t, adm, topic)
	compareRecords(t, "after retention", readPartition(t, srv.Addr, topic), records[start:])
}

// TestDeleteRecords moves the log start offset with kadm.DeleteRecords.
func TestDeleteRecords(t *testing.T) {
	srv := startServer(t, withCleaner(func(*cleaner.Config) {}))
	adm := newAdmin(t, srv.Addr)
	const topic = "delete-records"
	createTopicWith(t, adm, topic, map[string]string{"segment.bytes": "100"})
	cl := newClient(t, srv.Addr)
	var records []*kgo.Record
	for i := 0; i < 10; i++ {
		records = append(records, valueRecord(topic, i, time.Now()))
	}
	produceBatches(t, cl, records)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	deleteBefore := func(offset int64) (kadm.DeleteRecordsResponse, error) {
		var o kadm.Offsets
		o.Add(kadm.Offset{Topic: topic, Partition: 0, At: offset})
		resps, err := adm.DeleteRecords(ctx, o)
		if err != nil {
			return kadm.DeleteRecordsResponse{}, err
		}
		r, _ := resps.Lookup(topic, 0)
		return r, r.Err
	}
	r, err := deleteBefore(4)
	if err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete before 4: low watermark %d, %v", r.LowWatermark, err)
	}
	if got := startOffset(t, adm, topic); got != 4 {
		t.Fatalf("log start offset %d, want 4", got)
	}
	compareRecords(t, "after DeleteRecords", readPartition(t, srv.Addr, topic), records[4:])
	wantCode(t, "fetch below the log start", fetchCode(t, srv.Addr, topic, 2), kerr.OffsetOutOfRange)
	if _, err := deleteBefore(11); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Errorf("delete beyond the high watermark: %v, want OFFSET_OUT_OF_RANGE", err)
	}
	if r, err := deleteBefore(2); err != nil || r.LowWatermark != 4 {
		t.Errorf("delete below the log start: low watermark %d, %v; want 4, nil", r.LowWatermark, err)
	}
	// -1 is the high watermark; the start survives a restart.
	if r, err := deleteBefore(-1); err != nil || r.LowWatermark != 10 {
		t.Fatalf("delete before the high watermark: low watermark %d, %v", r.LowWatermark, err)
	}
	srv.restart()
	if got := startOffset(t, adm, topic); got != 10 {
		t.Fatalf("log start offset %d after restart, want 10", got)
	}
}
