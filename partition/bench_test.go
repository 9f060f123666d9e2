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

// BenchmarkPrepareApply is BenchmarkAppend and BenchmarkAppendIdempotent
// done as replication will: Prepare (the batch goes in flight), then
// Apply, as two calls; "encoded" also marshals and decodes the entry, as
// Raft carries it.
func BenchmarkPrepareApply(b *testing.B) {
	for _, bc := range []struct {
		name       string
		idempotent bool
		encoded    bool
	}{
		{"plain", false, false},
		{"idempotent", true, false},
		{"idempotent encoded", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tb := plain(1, 1_700_000_000_000)
			if bc.idempotent {
				tb = idem(1, 0, 0, 1)
			}
			tb.records[0].value = make([]byte, 1024)
			batch := tb.build(b)
			r, err := Open(b.TempDir(), "bench", 0, DefaultConfig(), Options{FS: log.OSFS{}})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			var (
				sequence uint32
				buf      []byte
			)
			for b.Loop() {
				if bc.idempotent {
					binary.BigEndian.PutUint32(batch[53:], sequence)
					fixCRC(batch)
					sequence++
				}
				e, _, err := r.Prepare(batch, 1)
				if err != nil {
					b.Fatal(err)
				}
				if bc.encoded {
					if buf, err = e.AppendBinary(buf[:0]); err != nil {
						b.Fatal(err)
					}
					if e, err = DecodeEntry(buf); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := r.Apply(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
