package partition

import (
	"encoding/binary"
	"testing"

	"github.com/sluice-io/sluice/log"
)

// BenchmarkAppend appends 1 KiB single-record batches to a replica on the
// operating system's filesystem, without Durable (no fsync per append).
func BenchmarkAppend(b *testing.B) {
	tb := plain(1, 1_700_000_000_000)
	tb.records[0].value = make([]byte, 1024)
	batch := tb.build(b)
	r, err := Open(b.TempDir(), "bench", 0, DefaultConfig(), Options{FS: log.OSFS{}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		// Append rewrites only the base offset and leader epoch, outside
		// the CRC, so the same bytes can be appended again.
		if _, err := r.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendIdempotent is BenchmarkAppend with an idempotent producer,
// so every append also checks and advances producer state. Each iteration
// rewrites the base sequence and so recomputes the batch CRC.
func BenchmarkAppendIdempotent(b *testing.B) {
	tb := idem(1, 0, 0, 1)
	tb.records[0].value = make([]byte, 1024)
	batch := tb.build(b)
	r, err := Open(b.TempDir(), "bench", 0, DefaultConfig(), Options{FS: log.OSFS{}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	sequence := uint32(0)
	for b.Loop() {
		binary.BigEndian.PutUint32(batch[53:], sequence)
		fixCRC(batch)
		sequence++
		if _, err := r.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
}
