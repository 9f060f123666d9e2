package test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCompression produces with each codec, consumes the records back and
// checks, with a raw Fetch, that the batches are stored compressed as the
// producer sent them.
func TestCompression(t *testing.T) {
	srv := startServer(t)
	keys := apiVersions(t, srv.Addr)
	for _, tc := range []struct {
		name      string
		codec     kgo.CompressionCodec
		attribute int16 // batch attributes & 0x07
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "compressed-" + tc.name
			createTopic(t, srv.Addr, topic, 3)
			producer := newClient(t, srv.Addr, kgo.ProducerBatchCompression(tc.codec), kgo.ProducerLinger(0))
			produced := makeRecords(topic, 3000)
			produceAll(t, producer, produced)
			want := expectedByPartition(t, produced)

			consumer := newClient(t, srv.Addr, consumeFromStart(topic)...)
			got := byPartition(consumeN(t, consumer, len(produced)))
			for p := range int32(3) {
				compareRecords(t, fmt.Sprintf("%s partition %d", tc.name, p), got[p], want[p])
			}

			// Stored as is: the first batch fetched raw keeps its codec.
			batches := rawFetch(t, dialRaw(t, srv.Addr), keys, topic, 0, 0)
			var batch kmsg.RecordBatch
			if err := batch.ReadFrom(batches); err != nil {
				t.Fatalf("decode fetched batch: %v", err)
			}
			if codec := batch.Attributes & 0x07; codec != tc.attribute {
				t.Errorf("stored batch compression %d, want %d (batches must be stored as produced)", codec, tc.attribute)
			}
		})
	}
}

// rawFetch fetches topic/partition from offset with Fetch at the newest
// version that still names topics (v12) and returns the record batch bytes.
func rawFetch(tb testing.TB, c *rawConn, keys map[int16]kmsg.ApiVersionsResponseApiKey, topic string, partition int32, offset int64) []byte {
	tb.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(min(maxVersion(tb, keys, req), 12))
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.mustRoundTrip(req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		tb.Fatalf("Fetch v%d response: error code %d, %d topics", req.Version, resp.ErrorCode, len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		tb.Fatalf("Fetch v%d %s/%d@%d: error code %d", req.Version, topic, partition, offset, p.ErrorCode)
	}
	return p.RecordBatches
}
