package partition

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDecompress(t *testing.T) {
	plain := bytes.Repeat([]byte("sluice record payload "), 1000)
	codecs := []struct {
		name  string
		id    int8
		codec kgo.CompressionCodec
	}{
		{"gzip", codecGzip, kgo.GzipCompression()},
		{"snappy", codecSnappy, kgo.SnappyCompression()},
		{"lz4", codecLZ4, kgo.Lz4Compression()},
		{"zstd", codecZstd, kgo.ZstdCompression()},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			comp, err := kgo.DefaultCompressor(c.codec)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			compressed, _ := comp.Compress(&buf, plain)
			compressed = bytes.Clone(compressed)

			got, err := Decompress(compressed, c.id, len(plain))
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("round trip: %v (%d bytes)", err, len(got))
			}
			if _, err := Decompress(compressed, c.id, len(plain)-1); !errors.Is(err, ErrDecompressedTooLarge) {
				t.Fatalf("one byte over the limit: %v", err)
			}
			if _, err := Decompress(compressed[:len(compressed)/2], c.id, len(plain)); !errors.Is(err, kerr.CorruptMessage) {
				t.Fatalf("truncated input: %v", err)
			}
		})
	}
	t.Run("xerial snappy", func(t *testing.T) {
		// The Java client frames snappy the xerial way.
		var buf bytes.Buffer
		comp, _ := kgo.DefaultCompressor(kgo.SnappyCompression())
		block, _ := comp.Compress(&buf, plain)
		framed := append(append([]byte(nil), xerialHeader...), 0, 0, 0, 1, 0, 0, 0, 1)
		framed = append(framed, byte(len(block)>>24), byte(len(block)>>16), byte(len(block)>>8), byte(len(block)))
		framed = append(framed, block...)
		got, err := Decompress(framed, codecSnappy, len(plain))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("xerial: %v", err)
		}
	})
	t.Run("bomb", func(t *testing.T) {
		zeros := make([]byte, 8<<20)
		comp, _ := kgo.DefaultCompressor(kgo.GzipCompression())
		var buf bytes.Buffer
		small, _ := comp.Compress(&buf, zeros)
		if _, err := Decompress(small, codecGzip, 1<<20); !errors.Is(err, ErrDecompressedTooLarge) {
			t.Fatalf("%d compressed bytes expanding to %d: %v", len(small), len(zeros), err)
		}
	})
	t.Run("unknown codec", func(t *testing.T) {
		if _, err := Decompress([]byte{1}, 7, 10); !errors.Is(err, kerr.CorruptMessage) {
			t.Fatal(err)
		}
	})
}
