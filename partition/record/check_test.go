package record

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
)

// batchOf builds a produced batch with header h (count and last offset
// delta as given) around section compressed with codec.
func batchOf(t *testing.T, codec Codec, count int32, section []byte) []byte {
	t.Helper()
	b, err := AppendBatch(nil, log.BatchHeader{PartitionLeaderEpoch: -1, Attributes: int16(codec), LastOffsetDelta: count - 1,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, RecordCount: count}, section)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckProduced(t *testing.T) {
	record := func(delta int32) []byte {
		return AppendRecord(nil, &Record{OffsetDelta: delta, Key: []byte("k"), Value: []byte("v")})
	}
	two := append(record(0), record(1)...)
	for _, codec := range append([]Codec{None}, compressedCodecs...) {
		t.Run(codec.String(), func(t *testing.T) {
			garbage := log.AppendBatch(nil, log.BatchHeader{Attributes: int16(codec), LastOffsetDelta: 1, RecordCount: 2,
				ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []byte("this is not a compressed stream"))
			for _, tc := range []struct {
				name string
				b    []byte
				ok   bool
			}{
				{"good", batchOf(t, codec, 2, two), true},
				{"garbage payload", garbage, codec == None},
				{"fewer records than counted", batchOf(t, codec, 3, two), false},
				{"more records than counted", batchOf(t, codec, 1, two), false},
				{"offset deltas not dense", batchOf(t, codec, 2, append(record(0), record(2)...)), false},
				{"record does not decode", batchOf(t, codec, 2, append(record(0), 2, 0)), false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					h, err := log.ParseBatchHeader(tc.b)
					if err != nil {
						t.Fatal(err)
					}
					if codec == None && tc.name == "garbage payload" {
						// Uncompressed garbage is caught by
						// log.VerifyBatch's record walk already.
						if _, err := log.VerifyProducedBatch(tc.b); err == nil {
							t.Fatal("VerifyProducedBatch accepted garbage")
						}
						return
					}
					err = CheckProduced(tc.b, h, MaxDecompressedBytes, nil)
					if tc.ok != (err == nil) {
						t.Fatalf("CheckProduced = %v, want ok %v", err, tc.ok)
					}
					if err != nil && !errors.Is(err, log.ErrCorrupt) {
						t.Fatalf("error %v does not wrap log.ErrCorrupt", err)
					}
					if tc.name == "garbage payload" && !errors.Is(err, kerr.CorruptMessage) {
						t.Fatalf("error %v does not wrap kerr.CorruptMessage", err)
					}
				})
			}
		})
	}
	t.Run("above the limit", func(t *testing.T) {
		b := batchOf(t, Zstd, 2, two)
		h, _ := log.ParseBatchHeader(b)
		if err := CheckProduced(b, h, len(two)-1, nil); !errors.Is(err, ErrDecompressedTooLarge) {
			t.Fatal(err)
		}
	})
	t.Run("fn stops it", func(t *testing.T) {
		b := batchOf(t, LZ4, 2, two)
		h, _ := log.ParseBatchHeader(b)
		stop := errors.New("stop")
		n := 0
		err := CheckProduced(b, h, MaxDecompressedBytes, func(r *Record) error {
			n++
			if r.OffsetDelta == 1 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 {
			t.Fatalf("CheckProduced = %v after %d records", err, n)
		}
	})
}
