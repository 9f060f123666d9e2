package partition

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// poisonBatch returns a produced batch flagged with codec whose records
// section is garbage for every codec, with a valid CRC: what a buggy or
// hostile producer can send.
func poisonBatch(codec record.Codec) []byte {
	return log.AppendBatch(nil, log.BatchHeader{PartitionLeaderEpoch: -1, Attributes: int16(codec), LastOffsetDelta: 1,
		BaseTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		RecordCount: 2}, []byte("\x02\x00this payload is no compressed stream of any codec"))
}

// rebuilt returns a produced batch of two records around section, the
// records section as given, compressed with codec.
func rebuilt(t *testing.T, codec record.Codec, count int32, section []byte) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, log.BatchHeader{PartitionLeaderEpoch: -1, Attributes: int16(codec), LastOffsetDelta: count - 1,
		BaseTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		RecordCount: count}, section)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAppendRefusesPoisonBatch checks the leader step's record check: a
// batch with a valid CRC whose records a consumer could not read is
// CorruptMessage, for every codec, and leaves the log as it was; the
// records around it stay readable.
func TestAppendRefusesPoisonBatch(t *testing.T) {
	rec := func(delta int32) []byte {
		return record.AppendRecord(nil, &record.Record{OffsetDelta: delta, Key: []byte("k"), Value: []byte("v")})
	}
	for _, codec := range []record.Codec{record.Gzip, record.Snappy, record.LZ4, record.Zstd, record.None} {
		t.Run(codec.String(), func(t *testing.T) {
			cases := []struct {
				name  string
				batch []byte
			}{
				{"offset deltas not dense", rebuilt(t, codec, 2, append(rec(0), rec(5)...))},
				{"fewer records than counted", rebuilt(t, codec, 3, append(rec(0), rec(1)...))},
				{"record does not decode", rebuilt(t, codec, 2, append(rec(0), 4, 0, 0, 0, 0))},
			}
			if codec != record.None {
				cases = append(cases, struct {
					name  string
					batch []byte
				}{"garbage payload", poisonBatch(codec)})
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					env := newEnv(t)
					r := env.open(t)
					good := kvBatch(t, batchOptions{codec: codec, producerID: -1, producerEpoch: -1, sequence: -1},
						kv{key: "a", value: "1", ts: 1_700_000_000_000})
					mustAppend(t, r, bytes.Clone(good))
					if _, err := log.VerifyProducedBatch(tc.batch); err != nil && codec != record.None {
						t.Fatalf("the poison batch must pass the header checks: %v", err)
					}
					if _, err := r.Append(tc.batch); !errors.Is(err, kerr.CorruptMessage) {
						t.Fatalf("Append = %v, want CORRUPT_MESSAGE", err)
					}
					if o := r.Offsets(); o.LogEnd != 1 {
						t.Fatalf("log end %d after a refused batch, want 1", o.LogEnd)
					}
					mustAppend(t, r, bytes.Clone(good))
					if got := readRecords(t, r); len(got) != 2 || got[1].offset != 1 || got[1].value != "1" {
						t.Fatalf("read back %+v", got)
					}
				})
			}
		})
	}
}

func TestAppendCheckIsOneDecompression(t *testing.T) {
	// A compacted topic's keyless check and the record check share one
	// pass: a corrupt record before a keyless one is CorruptMessage, a
	// keyless one before a corrupt one InvalidRecord.
	env := newEnv(t)
	env.cfg.CleanupPolicy = CleanupCompact
	r := env.open(t)
	keyed := record.AppendRecord(nil, &record.Record{OffsetDelta: 0, Key: []byte("k"), Value: []byte("v")})
	keyless := record.AppendRecord(nil, &record.Record{OffsetDelta: 0, Value: []byte("v")})
	bad := []byte{4, 0, 0, 0, 0}
	if _, err := r.Append(rebuilt(t, record.Zstd, 2, append(bytes.Clone(bad), keyless...))); !errors.Is(err, kerr.CorruptMessage) {
		t.Fatalf("corrupt then keyless: %v", err)
	}
	if _, err := r.Append(rebuilt(t, record.Zstd, 2, append(bytes.Clone(keyless), bad...))); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless then corrupt: %v", err)
	}
	mustAppend(t, r, rebuilt(t, record.Zstd, 1, keyed))
}

func TestPoisonBatchLeavesProducerStateUntouched(t *testing.T) {
	// A refused idempotent batch must not advance its producer's
	// sequence: the producer's next (good) batch with the same sequence
	// is accepted, not OUT_OF_ORDER_SEQUENCE_NUMBER.
	env := newEnv(t)
	r := env.open(t)
	poison := log.AppendBatch(nil, log.BatchHeader{PartitionLeaderEpoch: -1, Attributes: int16(record.Zstd), LastOffsetDelta: 0,
		BaseTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_000, ProducerID: 7, ProducerEpoch: 0, BaseSequence: 0,
		RecordCount: 1}, []byte("not zstd"))
	if _, err := r.Append(poison); !errors.Is(err, kerr.CorruptMessage) {
		t.Fatalf("Append(poison) = %v, want CORRUPT_MESSAGE", err)
	}
	good := kvBatch(t, batchOptions{codec: record.Zstd, producerID: 7, producerEpoch: 0, sequence: 0}, kv{key: "a", value: "1", ts: 1_700_000_000_000})
	if res := mustAppend(t, r, good); res.BaseOffset != 0 || res.Duplicate {
		t.Fatalf("good batch after the poison: %+v", res)
	}
}
