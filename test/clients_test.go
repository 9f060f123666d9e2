package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newClient returns a franz-go client of addr; t.Cleanup closes it.
func newClient(tb testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("sluice-e2e")}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		tb.Fatalf("kgo.NewClient: %v", err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// newAdmin returns a kadm client of addr; t.Cleanup closes it.
func newAdmin(tb testing.TB, addr string, opts ...kgo.Opt) *kadm.Client {
	tb.Helper()
	return kadm.NewClient(newClient(tb, addr, opts...))
}

// createTopic creates topic with the given partition count, failing the
// test on any error.
func createTopic(tb testing.TB, addr, topic string, partitions int32) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := newAdmin(tb, addr).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		tb.Fatalf("create topic %s with %d partitions: %v", topic, partitions, err)
	}
}

// produceAll produces records with cl and waits for every acknowledgement;
// afterwards each record carries its partition and offset.
func produceAll(tb testing.TB, cl *kgo.Client, records []*kgo.Record) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		tb.Fatalf("produce %d records: %v", len(records), err)
	}
}

// consumeN polls cl until it has n records and returns them; more than n or
// a fetch error fails the test.
func consumeN(tb testing.TB, cl *kgo.Client, n int) []*kgo.Record {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	records := make([]*kgo.Record, 0, n)
	for len(records) < n {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			tb.Fatalf("consumed %d of %d records before timeout", len(records), n)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			tb.Fatalf("fetch %s/%d: %v", topic, partition, err)
		})
		records = append(records, fetches.Records()...)
	}
	if len(records) > n {
		tb.Fatalf("consumed %d records, want %d", len(records), n)
	}
	return records
}

// byPartition groups records by partition, keeping their order.
func byPartition(records []*kgo.Record) map[int32][]*kgo.Record {
	m := make(map[int32][]*kgo.Record)
	for _, r := range records {
		m[r.Partition] = append(m[r.Partition], r)
	}
	return m
}

// diffRecord describes how got differs from want (topic, partition,
// offset, key, value, headers, timestamp), or returns "".
func diffRecord(got, want *kgo.Record) string {
	switch {
	case got.Topic != want.Topic || got.Partition != want.Partition || got.Offset != want.Offset:
		return fmt.Sprintf("at %s/%d@%d, want %s/%d@%d", got.Topic, got.Partition, got.Offset, want.Topic, want.Partition, want.Offset)
	case !bytes.Equal(got.Key, want.Key):
		return fmt.Sprintf("key %q, want %q", got.Key, want.Key)
	case !bytes.Equal(got.Value, want.Value):
		return fmt.Sprintf("value %.40q, want %.40q", got.Value, want.Value)
	case len(got.Headers) != len(want.Headers):
		return fmt.Sprintf("%d headers, want %d", len(got.Headers), len(want.Headers))
	case !want.Timestamp.IsZero() && got.Timestamp.UnixMilli() != want.Timestamp.UnixMilli():
		return fmt.Sprintf("timestamp %d, want %d", got.Timestamp.UnixMilli(), want.Timestamp.UnixMilli())
	}
	for i := range got.Headers {
		if got.Headers[i].Key != want.Headers[i].Key || !bytes.Equal(got.Headers[i].Value, want.Headers[i].Value) {
			return fmt.Sprintf("header %d %q=%q, want %q=%q", i, got.Headers[i].Key, got.Headers[i].Value, want.Headers[i].Key, want.Headers[i].Value)
		}
	}
	return ""
}

// compareRecords fails the test unless got and want hold the same records
// in the same order, reporting at most a few differences.
func compareRecords(tb testing.TB, what string, got, want []*kgo.Record) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Errorf("%s: %d records, want %d", what, len(got), len(want))
	}
	reported := 0
	for i := range min(len(got), len(want)) {
		if d := diffRecord(got[i], want[i]); d != "" {
			tb.Errorf("%s: record %d: %s", what, i, d)
			if reported++; reported == 5 {
				tb.FailNow()
			}
		}
	}
}

// requireClients reports whether tests must fail, not skip, when an
// external client is missing (SLUICE_REQUIRE_CLIENTS=1, set by CI).
func requireClients() bool { return os.Getenv("SLUICE_REQUIRE_CLIENTS") == "1" }

// needClient skips (or, under SLUICE_REQUIRE_CLIENTS=1, fails) the test
// with why when an external client is missing.
func needClient(tb testing.TB, why string) {
	tb.Helper()
	if requireClients() {
		tb.Fatalf("%s, and SLUICE_REQUIRE_CLIENTS=1 (install it: see .ci/run)", why)
	}
	tb.Skipf("%s; install it or set SLUICE_REQUIRE_CLIENTS=1 to make this a failure", why)
}

// lookPath returns the path of an executable or "" when it is missing.
func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// consumeFromStart returns the options of a consumer of every partition of
// topic from the earliest offset.
func consumeFromStart(topic string) []kgo.Opt {
	return []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
}
