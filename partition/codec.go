package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
)

// MaxDecompressedBytes bounds what one compressed batch may expand to when
// the broker must look inside it (timestamp lookup, old message formats).
// Producers' batches are bounded compressed (max.message.bytes), not
// expanded, so without this bound a few kilobytes of zeros could make the
// broker allocate gigabytes.
const MaxDecompressedBytes = 64 << 20

// Compression codec ids, as a batch's attributes carry them.
const (
	codecNone   int8 = 0
	codecGzip   int8 = 1
	codecSnappy int8 = 2
	codecLZ4    int8 = 3
	codecZstd   int8 = 4
)

// ErrDecompressedTooLarge reports a compressed payload that expands past
// the limit. It wraps kerr.CorruptMessage: clients see CORRUPT_MESSAGE.
var ErrDecompressedTooLarge = fmt.Errorf("partition: decompressed size above the limit: %w", kerr.CorruptMessage)

// xerialHeader starts snappy data framed the way the Java client's
// snappy-java writes it.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// zstdDecoder is shared: DecodeAll is safe for concurrent use. Its memory
// limit is also its output limit.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxDecompressedBytes), zstd.WithDecoderConcurrency(0))
})

// Decompress expands src, compressed with codec (0 none, 1 gzip, 2 snappy
// raw or xerial-framed, 3 lz4 frame, 4 zstd), refusing output above limit
// bytes with ErrDecompressedTooLarge. Malformed input is an error wrapping
// kerr.CorruptMessage. With codec 0 it returns src itself.
func Decompress(src []byte, codec int8, limit int) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch codec {
	case codecNone:
		if len(src) > limit {
			return nil, ErrDecompressedTooLarge
		}
		return src, nil
	case codecGzip:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(src)); err == nil {
			out, err = readLimited(r, limit)
		}
	case codecSnappy:
		out, err = decompressSnappy(src, limit)
	case codecLZ4:
		out, err = readLimited(lz4.NewReader(bytes.NewReader(src)), limit)
	case codecZstd:
		var d *zstd.Decoder
		if d, err = zstdDecoder(); err == nil {
			out, err = d.DecodeAll(src, nil)
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || len(out) > limit {
				return nil, ErrDecompressedTooLarge
			}
		}
	default:
		return nil, fmt.Errorf("unknown compression codec %d: %w", codec, kerr.CorruptMessage)
	}
	if errors.Is(err, ErrDecompressedTooLarge) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("decompress codec %d: %w: %v", codec, kerr.CorruptMessage, err)
	}
	return out, nil
}

// readLimited reads r to the end, failing once more than limit bytes come.
func readLimited(r io.Reader, limit int) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, ErrDecompressedTooLarge
	}
	return out, nil
}

// decompressSnappy handles raw snappy blocks and xerial framing:
//
//	header 8 bytes | version int32 | compatible int32 |
//	{ chunk length int32 | snappy block }...
func decompressSnappy(src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialHeader) {
		return decodeSnappyBlock(nil, src, limit)
	}
	if len(src) < 16 {
		return nil, errors.New("xerial snappy header cut short")
	}
	src = src[16:]
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errors.New("xerial snappy chunk length cut short")
		}
		n := int(binary.BigEndian.Uint32(src))
		src = src[4:]
		if n < 0 || n > len(src) {
			return nil, fmt.Errorf("xerial snappy chunk of %d bytes, %d left", n, len(src))
		}
		var err error
		if out, err = decodeSnappyBlock(out, src[:n], limit-len(out)); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return out, nil
}

// decodeSnappyBlock appends one decoded snappy block to dst, checking its
// declared length against limit before allocating.
func decodeSnappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, ErrDecompressedTooLarge
	}
	decoded, err := s2.Decode(nil, block)
	if err != nil {
		return nil, err
	}
	return append(dst, decoded...), nil
}
