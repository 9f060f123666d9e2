package record

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

var compressedCodecs = []Codec{Gzip, Snappy, LZ4, Zstd}

func TestCompressRoundTrip(t *testing.T) {
	plain := bytes.Repeat([]byte("sluice record payload "), 1000)
	for _, codec := range append([]Codec{None}, compressedCodecs...) {
		t.Run(codec.String(), func(t *testing.T) {
			prefix := []byte("keep")
			out, err := Compress(bytes.Clone(prefix), codec, plain)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatal("Compress did not append to dst")
			}
			compressed := out[len(prefix):]
			got, err := Decompress(compressed, codec, len(plain))
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("round trip: %v (%d bytes)", err, len(got))
			}
			if _, err := Decompress(compressed, codec, len(plain)-1); !errors.Is(err, ErrDecompressedTooLarge) {
				t.Fatalf("one byte over the limit: %v", err)
			}
			if codec == None {
				return
			}
			if _, err := Decompress(compressed[:len(compressed)/2], codec, len(plain)); !errors.Is(err, kerr.CorruptMessage) {
				t.Fatalf("truncated input: %v", err)
			}
		})
	}
}

func TestDecompressXerialSnappy(t *testing.T) {
	// The Java client frames snappy the xerial way.
	plain := bytes.Repeat([]byte("sluice record payload "), 1000)
	block, err := Compress(nil, Snappy, plain)
	if err != nil {
		t.Fatal(err)
	}
	framed := append(append([]byte(nil), xerialHeader...), 0, 0, 0, 1, 0, 0, 0, 1)
	framed = append(framed, byte(len(block)>>24), byte(len(block)>>16), byte(len(block)>>8), byte(len(block)))
	framed = append(framed, block...)
	got, err := Decompress(framed, Snappy, len(plain))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("xerial: %v", err)
	}
	if _, err := Decompress(framed[:len(framed)-1], Snappy, len(plain)); !errors.Is(err, kerr.CorruptMessage) {
		t.Fatalf("cut xerial chunk: %v", err)
	}
}

func TestDecompressBomb(t *testing.T) {
	zeros := make([]byte, 8<<20)
	for _, codec := range compressedCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			small, err := Compress(nil, codec, zeros)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Decompress(small, codec, 1<<20); !errors.Is(err, ErrDecompressedTooLarge) {
				t.Fatalf("%d compressed bytes expanding to %d: %v", len(small), len(zeros), err)
			}
		})
	}
}

func TestUnknownCodec(t *testing.T) {
	if _, err := Decompress([]byte{1}, 7, 10); !errors.Is(err, kerr.CorruptMessage) || !errors.Is(err, ErrUnknownCodec) {
		t.Fatal(err)
	}
	if _, err := Compress(nil, 5, []byte{1}); !errors.Is(err, ErrUnknownCodec) {
		t.Fatal(err)
	}
}
