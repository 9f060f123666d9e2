package partition

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
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

// BenchmarkAppendRecordCheck measures what the leader's record check
// (checkRecords: decompress and decode every record of a produced batch,
// so that a poison batch is refused) costs on compressed produce. For each
// codec it appends the same batch of 16 records of 1 KiB (log-like text,
// compressible about 3 to 5 times) to a replica on the operating system's
// filesystem, without Durable, in alternating rounds with the check on and
// off (each first in every other round), so that both see the same
// machine. Each op appends a fixed number of
// batches: run it with -benchtime=1x (make bench).
//
// Metrics: checked-us/batch and unchecked-us/batch, the mean Append time
// of one batch with and without the check; check-cost, their ratio
// (1.10 means the check adds 10 % to an append); check-only-us/batch, the
// check alone, called in a loop (no I/O, so steadier than the difference
// of the two Append figures); MB/s, uncompressed record bytes appended
// per second with the check; batch-bytes, the batch's size as produced.
func BenchmarkAppendRecordCheck(b *testing.B) {
	const (
		records     = 16
		valueSize   = 1024
		rounds      = 10
		perRound    = 200 // batches per round and setting
		uncompBytes = records * valueSize
	)
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"GET", "POST", "/api/v1/orders", "/health", "200", "404", "user=", "took=", "ms", "trace-id=", "sluice", "partition"}
	for _, codec := range []record.Codec{record.None, record.Gzip, record.Snappy, record.LZ4, record.Zstd} {
		b.Run(codec.String(), func(b *testing.B) {
			bld := record.Builder{Codec: codec}
			for i := range records {
				var value []byte
				for len(value) < valueSize {
					value = append(value, words[rng.IntN(len(words))]...)
					value = strconv.AppendUint(value, rng.Uint64N(1<<20), 10)
					value = append(value, ' ')
				}
				bld.Add(1_700_000_000_000+int64(i), nil, value[:valueSize])
			}
			batch, err := bld.AppendTo(nil)
			if err != nil {
				b.Fatal(err)
			}
			r, err := Open(b.TempDir(), "bench", 0, DefaultConfig(), Options{FS: log.OSFS{}})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			defer func() { skipRecordCheck = false }()
			var took [2]time.Duration // [0] checked, [1] unchecked
			b.ResetTimer()
			for b.Loop() {
				for round := range rounds {
					for i := range 2 {
						// Alternate which setting goes first, so neither
						// always follows the other's writes.
						setting := (i + round) % 2
						skipRecordCheck = setting == 1
						start := time.Now()
						for range perRound {
							// Append rewrites only the base offset and
							// leader epoch, outside the CRC, so the same
							// bytes can be appended again.
							if _, err := r.Append(batch); err != nil {
								b.Fatal(err)
							}
						}
						took[setting] += time.Since(start)
					}
				}
			}
			n := float64(b.N * rounds * perRound)
			checked, unchecked := float64(took[0].Microseconds())/n, float64(took[1].Microseconds())/n
			// The check alone, without the I/O that makes the two
			// Append figures noisy.
			h, err := log.ParseBatchHeader(batch)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for range rounds * perRound {
				if err := r.checkRecords(batch, h); err != nil {
					b.Fatal(err)
				}
			}
			checkOnly := float64(time.Since(start).Microseconds()) / float64(rounds*perRound)
			b.ReportMetric(checkOnly, "check-only-us/batch")
			b.ReportMetric(checked, "checked-us/batch")
			b.ReportMetric(unchecked, "unchecked-us/batch")
			b.ReportMetric(checked/unchecked, "check-cost")
			b.ReportMetric(uncompBytes/checked, "MB/s")
			b.ReportMetric(float64(len(batch)), "batch-bytes")
		})
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
// done as two calls: Prepare (the batch goes in flight), then Apply.
func BenchmarkPrepareApply(b *testing.B) {
	for _, bc := range []struct {
		name       string
		idempotent bool
	}{
		{"plain", false},
		{"idempotent", true},
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
			var sequence uint32
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
				if _, err := r.Apply(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
