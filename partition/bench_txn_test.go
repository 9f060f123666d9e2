package partition

import (
	"testing"
	"time"

	"github.com/sluice-io/sluice/log"
)

// BenchmarkReadCommitted compares reading a partition with read_committed
// (bounded by the LSO, with the aborted transactions overlapping each
// read looked up) and read_uncommitted, over the same log: 20 producers
// writing transactions of 10 batches of 4 records of 256 bytes, one
// transaction in ten aborted, interleaved, on the operating system's
// filesystem. Each op reads the whole log in 1 MiB reads, once per
// isolation level, alternating which goes first: run it with
// -benchtime=1x or more (make bench).
//
// Metrics: committed-ms and uncommitted-ms, the mean time of one whole
// pass; committed/uncommitted, their ratio (I/O bound, so noisy on a busy
// machine); lookup-us/read, what read_committed adds to a read with no
// I/O, timed alone (finding the end of the batches read and the aborted
// transactions overlapping them); aborted-txns, the aborted transactions
// reported over a pass.
func BenchmarkReadCommitted(b *testing.B) {
	const (
		producers   = 20
		txns        = 50 // per producer
		batchesEach = 10 // per transaction
		records     = 4
		valueSize   = 256
		readBytes   = 1 << 20
	)
	r, err := Open(b.TempDir(), "bench", 0, DefaultConfig(), Options{FS: log.OSFS{}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	seq := make([]int32, producers)
	for txn := range txns {
		for batch := range batchesEach {
			for id := range producers {
				tb := idem(int64(id), 0, seq[id], records)
				for i := range tb.records {
					tb.records[i].value = make([]byte, valueSize)
				}
				tb.attributes = 0x10
				if _, err := r.Append(tb.build(b)); err != nil {
					b.Fatal(err)
				}
				seq[id] += records
				if batch == batchesEach-1 {
					commit := (txn*producers+id)%10 != 0
					if _, err := r.AppendMarker(marker(int64(id), 0, commit)); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	}
	end := r.Offsets().LastStable
	if end != r.Offsets().HighWatermark {
		b.Fatalf("offsets %+v: a transaction is open", r.Offsets())
	}
	var committed, uncommitted, lookup time.Duration
	var aborted, lookups int
	pass := func(isolation Isolation) (time.Duration, int) {
		start, aborted := time.Now(), 0
		buf := make([]byte, 0, 2*readBytes)
		for offset := int64(0); offset < end; {
			res, err := r.Read(buf[:0], ReadRequest{Offset: offset, MaxBytes: readBytes, MinOneBatch: true, Isolation: isolation})
			if err != nil {
				b.Fatal(err)
			}
			aborted += len(res.Aborted)
			next := batchesEnd(res.Records)
			if isolation == ReadCommitted {
				began := time.Now()
				_ = r.txns.abortedIn(offset, func() int64 { return batchesEnd(res.Records) })
				lookup += time.Since(began)
				lookups++
			}
			if next <= offset {
				b.Fatalf("read at %d made no progress", offset)
			}
			offset = next
		}
		return time.Since(start), aborted
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			d, n := pass(ReadCommitted)
			committed, aborted = committed+d, n
			d, _ = pass(ReadUncommitted)
			uncommitted += d
		} else {
			d, _ := pass(ReadUncommitted)
			uncommitted += d
			d, n := pass(ReadCommitted)
			committed, aborted = committed+d, n
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(committed)/1e6/n, "committed-ms")
	b.ReportMetric(float64(uncommitted)/1e6/n, "uncommitted-ms")
	b.ReportMetric(float64(committed)/float64(uncommitted), "committed/uncommitted")
	b.ReportMetric(float64(lookup.Microseconds())/float64(lookups), "lookup-us/read")
	b.ReportMetric(float64(aborted), "aborted-txns")
}
