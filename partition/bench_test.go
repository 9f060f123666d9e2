package partition

import (
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
