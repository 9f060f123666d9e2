package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// TestPoisonBatchRefused produces, over TCP, good compressed records, then
// a poison batch (flagged with the codec, valid CRC, a payload that does
// not decompress), then more good records, for every codec. The poison
// batch must be refused with CORRUPT_MESSAGE and take no offset, and a
// real consumer must read every good record, those after the refused
// batch included.
func TestPoisonBatchRefused(t *testing.T) {
	srv := startServer(t)
	keys := apiVersions(t, srv.Addr)
	c := dialRaw(t, srv.Addr)
	const perBatch = 3
	for _, codec := range []record.Codec{record.Gzip, record.Snappy, record.LZ4, record.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			topic := "poison-" + codec.String()
			createTopic(t, srv.Addr, topic, 1)
			good := func(from int) []byte {
				b := record.Builder{Codec: codec}
				for i := range perBatch {
					b.Add(time.Now().UnixMilli(), nil, fmt.Appendf(nil, "good-%d", from+i))
				}
				batch, err := b.AppendTo(nil)
				if err != nil {
					t.Fatal(err)
				}
				return batch
			}
			if p := rawProduce(t, c, keys, topic, 0, good(0)); p.ErrorCode != 0 || p.BaseOffset != 0 {
				t.Fatalf("first good batch: error code %d, base offset %d", p.ErrorCode, p.BaseOffset)
			}

			now := time.Now().UnixMilli()
			poison := log.AppendBatch(nil, log.BatchHeader{PartitionLeaderEpoch: -1, Attributes: int16(codec),
				LastOffsetDelta: 1, BaseTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1,
				BaseSequence: -1, RecordCount: 2}, []byte("not a compressed stream of any codec"))
			if _, err := log.VerifyProducedBatch(poison); err != nil {
				t.Fatalf("the poison batch must pass the CRC and header checks: %v", err)
			}
			p := rawProduce(t, c, keys, topic, 0, poison)
			wantCode(t, "Produce of a "+codec.String()+" batch that does not decompress", p.ErrorCode, kerr.CorruptMessage)
			if end := rawEndOffset(t, c, keys, topic, 0); end != perBatch {
				t.Fatalf("end offset %d after the refused batch, want %d", end, perBatch)
			}

			if p := rawProduce(t, c, keys, topic, 0, good(perBatch)); p.ErrorCode != 0 || p.BaseOffset != perBatch {
				t.Fatalf("good batch after the poison: error code %d, base offset %d", p.ErrorCode, p.BaseOffset)
			}
			// A real client producing with the codec goes on working too.
			producer := newClient(t, srv.Addr, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codecOf(codec)))
			produceAll(t, producer, []*kgo.Record{{Value: []byte(fmt.Sprintf("good-%d", 2*perBatch))}})

			consumer := newClient(t, srv.Addr, consumeFromStart(topic)...)
			got := consumeN(t, consumer, 2*perBatch+1)
			for i, r := range got {
				if want := fmt.Sprintf("good-%d", i); string(r.Value) != want || r.Offset != int64(i) {
					t.Errorf("record %d: %q at offset %d, want %q at %d", i, r.Value, r.Offset, want, i)
				}
			}
		})
	}
}

// codecOf returns franz-go's name for codec.
func codecOf(codec record.Codec) kgo.CompressionCodec {
	switch codec {
	case record.Gzip:
		return kgo.GzipCompression()
	case record.Snappy:
		return kgo.SnappyCompression()
	case record.LZ4:
		return kgo.Lz4Compression()
	case record.Zstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}
