package record

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sluice-io/sluice/log"
)

// added is a record as a test adds it to a Builder.
type added struct {
	timestamp  int64
	key, value []byte
	headers    []Header
}

func testRecords(n int) []added {
	var rs []added
	for i := range n {
		a := added{timestamp: 1_700_000_000_000 + int64(i%3)*10, key: fmt.Appendf(nil, "key-%d", i), value: bytes.Repeat([]byte{byte(i)}, i*10)}
		switch i % 4 {
		case 1:
			a.key = nil
		case 2:
			a.value = nil
		case 3:
			a.headers = []Header{{Key: "h", Value: []byte("v")}, {Key: "null"}}
		}
		rs = append(rs, a)
	}
	return rs
}

func TestBuilder(t *testing.T) {
	for _, codec := range append([]Codec{None}, compressedCodecs...) {
		for _, producer := range []*Producer{nil, {ID: 7, Epoch: 2, BaseSequence: 40}} {
			t.Run(fmt.Sprintf("%s/producer %v", codec, producer != nil), func(t *testing.T) {
				rs := testRecords(9)
				bld := Builder{Codec: codec, Producer: producer}
				for _, r := range rs {
					bld.Add(r.timestamp, r.key, r.value, r.headers...)
				}
				b, err := bld.AppendTo([]byte("x"))
				if err != nil {
					t.Fatal(err)
				}
				b = b[1:]
				h, err := log.VerifyProducedBatch(b)
				if err != nil {
					t.Fatal(err)
				}
				if h.Size() != len(b) || Codec(h.Compression()) != codec || h.RecordCount != 9 || h.LastOffsetDelta != 8 ||
					h.BaseTimestamp != rs[0].timestamp || h.MaxTimestamp != rs[0].timestamp+20 || h.PartitionLeaderEpoch != -1 {
					t.Fatalf("header %+v", h)
				}
				if producer == nil && (h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1) ||
					producer != nil && (h.ProducerID != 7 || h.ProducerEpoch != 2 || h.BaseSequence != 40) {
					t.Fatalf("producer fields %+v", h)
				}
				if err := CheckProduced(b, h, MaxDecompressedBytes, nil); err != nil {
					t.Fatal(err)
				}
				_, it, err := Records(b, MaxDecompressedBytes)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; it.Next(); i++ {
					r, want := it.Record(), rs[i]
					if int(r.OffsetDelta) != i || h.BaseTimestamp+r.TimestampDelta != want.timestamp ||
						!bytes.Equal(r.Key, want.key) || (r.Key == nil) != (want.key == nil) ||
						!bytes.Equal(r.Value, want.value) || (r.Value == nil) != (want.value == nil) ||
						!bytes.Equal(r.Headers, AppendHeaders(nil, want.headers)) {
						t.Fatalf("record %d = %+v, want %+v", i, r, want)
					}
				}
				if it.Err() != nil || it.Count() != 9 {
					t.Fatalf("iterated %d records: %v", it.Count(), it.Err())
				}

				bld.Reset()
				if _, err := bld.AppendTo(nil); err == nil {
					t.Fatal("AppendTo after Reset built an empty batch")
				}
			})
		}
	}
}

func TestAppendBatchKeepsHeader(t *testing.T) {
	section := AppendRecord(nil, &Record{OffsetDelta: 3, Value: []byte("v")})
	h := log.BatchHeader{BaseOffset: 100, PartitionLeaderEpoch: 4, Attributes: int16(Zstd) | 0x40, LastOffsetDelta: 5,
		BaseTimestamp: 10, MaxTimestamp: 20, ProducerID: 9, ProducerEpoch: 1, BaseSequence: 3, RecordCount: 1}
	b, err := AppendBatch(nil, h, section)
	if err != nil {
		t.Fatal(err)
	}
	got, err := log.VerifyBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	h.Magic, h.Length, h.CRC = 2, got.Length, got.CRC
	if got != h {
		t.Fatalf("header %+v, want %+v", got, h)
	}
	_, it, err := Records(b, MaxDecompressedBytes)
	if err != nil || !it.Next() || it.Record().OffsetDelta != 3 || it.Next() || it.Err() != nil {
		t.Fatalf("records: %v %v", err, it.Err())
	}
}
