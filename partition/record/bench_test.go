package record

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/sluice-io/sluice/log"
)

// BenchmarkCheckProduced measures CheckProduced alone on a batch of 16
// records of 1 KiB log-like text per codec; MB/s counts uncompressed
// record bytes.
func BenchmarkCheckProduced(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"GET", "POST", "/api/v1/orders", "/health", "200", "404", "user=", "took=", "ms", "trace-id=", "sluice"}
	var values [][]byte
	for range 16 {
		var v []byte
		for len(v) < 1024 {
			v = append(v, words[rng.IntN(len(words))]...)
			v = strconv.AppendUint(v, rng.Uint64N(1<<20), 10)
			v = append(v, ' ')
		}
		values = append(values, v[:1024])
	}
	for _, codec := range append([]Codec{None}, compressedCodecs...) {
		b.Run(codec.String(), func(b *testing.B) {
			bld := Builder{Codec: codec}
			for i, v := range values {
				bld.Add(int64(i), nil, v)
			}
			batch, err := bld.AppendTo(nil)
			if err != nil {
				b.Fatal(err)
			}
			h, err := log.VerifyProducedBatch(batch)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(16 * 1024)
			b.ReportAllocs()
			for b.Loop() {
				if err := CheckProduced(batch, h, MaxDecompressedBytes, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
