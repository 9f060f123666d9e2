package test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// baseTimestamp is the explicit CreateTime of record 0; record i has
// baseTimestamp + i ms, so timestamp lookups are deterministic.
var baseTimestamp = time.UnixMilli(1_700_000_000_000)

// makeRecords returns n keyed records for topic with headers and explicit,
// increasing timestamps. Keys repeat every 1000 records so that the default
// (murmur2) partitioner spreads them over every partition.
func makeRecords(topic string, n int) []*kgo.Record {
	records := make([]*kgo.Record, n)
	for i := range records {
		records[i] = &kgo.Record{
			Topic: topic,
			Key:   []byte("key-" + strconv.Itoa(i%1000)),
			Value: fmt.Appendf(nil, "value-%08d-%s", i, "0123456789abcdefghijklmnopqrstuvwxyz"),
			Headers: []kgo.RecordHeader{
				{Key: "index", Value: []byte(strconv.Itoa(i))},
				{Key: "empty", Value: nil},
			},
			Timestamp: baseTimestamp.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return records
}

// expectedByPartition groups produced records (partition and offset filled
// in by the producer) by partition, sorted by offset, and checks that the
// offsets of each partition are 0..n-1 and follow produce order.
func expectedByPartition(tb testing.TB, produced []*kgo.Record) map[int32][]*kgo.Record {
	tb.Helper()
	m := byPartition(produced) // produce order within each partition
	for p, records := range m {
		for i, r := range records {
			if r.Offset != int64(i) {
				tb.Fatalf("partition %d: record %d in produce order got offset %d, want %d (offsets must be dense and follow produce order)", p, i, r.Offset, i)
			}
		}
		sort.Slice(records, func(i, j int) bool { return records[i].Offset < records[j].Offset })
	}
	return m
}

// TestFranzProduceConsume produces 100k keyed records to 6 partitions with
// acks=all and idempotence (kgo's defaults), then reads them back: all from
// the start, from an offset, from a timestamp, and all again after a
// restart.
func TestFranzProduceConsume(t *testing.T) {
	const (
		topic      = "orders"
		partitions = 6
		count      = 100_000
	)
	srv := startServer(t)
	createTopic(t, srv.Addr, topic, partitions)

	producer := newClient(t, srv.Addr, kgo.RequiredAcks(kgo.AllISRAcks()))
	produced := makeRecords(topic, count)
	produceAll(t, producer, produced)
	want := expectedByPartition(t, produced)
	if len(want) != partitions {
		t.Fatalf("records landed in %d partitions, want %d", len(want), partitions)
	}

	readAll := func(t *testing.T, what string) {
		t.Helper()
		consumer := newClient(t, srv.Addr,
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)
		got := byPartition(consumeN(t, consumer, count))
		for p := range int32(partitions) {
			compareRecords(t, fmt.Sprintf("%s: partition %d", what, p), got[p], want[p])
		}
	}

	t.Run("all-from-start", func(t *testing.T) { readAll(t, "from start") })

	t.Run("end-offsets", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		ends, err := newAdmin(t, srv.Addr).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for p, records := range want {
			end, ok := ends.Lookup(topic, p)
			if !ok || end.Err != nil || end.Offset != int64(len(records)) {
				t.Errorf("partition %d end offset %+v, want %d", p, end, len(records))
			}
		}
	})

	t.Run("from-offset", func(t *testing.T) {
		for p, records := range want {
			from := int64(len(records) / 3)
			consumer := newClient(t, srv.Addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
				topic: {p: kgo.NewOffset().At(from)},
			}))
			got := consumeN(t, consumer, len(records)-int(from))
			compareRecords(t, fmt.Sprintf("partition %d from offset %d", p, from), got, records[from:])
		}
	})

	t.Run("from-timestamp", func(t *testing.T) {
		const fromIndex = count / 2
		ts := baseTimestamp.Add(fromIndex * time.Millisecond).UnixMilli()
		// The first record of each partition at or after ts is the first
		// one produced at or after index fromIndex.
		firstAfter := make(map[int32]*kgo.Record)
		remaining := 0
		for p, records := range want {
			i := sort.Search(len(records), func(i int) bool { return records[i].Timestamp.UnixMilli() >= ts })
			if i < len(records) {
				firstAfter[p] = records[i]
			}
			remaining += len(records) - i
		}

		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		listed, err := newAdmin(t, srv.Addr).ListOffsetsAfterMilli(ctx, ts, topic)
		if err != nil {
			t.Fatal(err)
		}
		for p, first := range firstAfter {
			got, ok := listed.Lookup(topic, p)
			if !ok || got.Err != nil || got.Offset != first.Offset {
				t.Errorf("ListOffsets(partition %d, timestamp %d) = %+v, want offset %d", p, ts, got, first.Offset)
			}
		}

		consumer := newClient(t, srv.Addr,
			kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(ts)),
		)
		got := byPartition(consumeN(t, consumer, remaining))
		for p, first := range firstAfter {
			if len(got[p]) == 0 {
				t.Errorf("partition %d: nothing consumed after timestamp %d", p, ts)
				continue
			}
			if d := diffRecord(got[p][0], first); d != "" {
				t.Errorf("partition %d: first record after timestamp %d: %s", p, ts, d)
			}
		}
	})

	t.Run("after-restart", func(t *testing.T) {
		srv.restart()
		readAll(t, "after restart")
	})
}
