package record

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
	"github.com/twmb/franz-go/pkg/kgo"
)

// Compression of a batch's records section. The codec id sits in bits 0-2
// of the batch attributes; the whole records section is one compressed
// stream:
//
//	codec  id  stream
//	none    0  the records themselves
//	gzip    1  RFC 1952 gzip
//	snappy  2  one raw snappy block, or xerial framing (read only):
//	           magic 82 'SNAPPY' 00 (8) | version int32 | compatible int32 |
//	           { chunk length int32 | raw snappy block }...
//	lz4     3  lz4 frame (not the raw block format)
//	zstd    4  zstd frame

// Codec is a compression codec id, as batch attributes carry it.
type Codec int8

// The codecs Kafka defines.
const (
	None   Codec = 0
	Gzip   Codec = 1
	Snappy Codec = 2
	LZ4    Codec = 3
	Zstd   Codec = 4
)

// String returns the codec's Kafka name (compression.type).
func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// MaxDecompressedBytes bounds what one records section may expand to when
// the broker must look inside a batch (produce validation, compaction,
// timestamp lookups, old message formats): 64 MiB.
const MaxDecompressedBytes = 64 << 20

var (
	// ErrDecompressedTooLarge reports a compressed payload that expands
	// past the limit. It wraps kerr.CorruptMessage: clients see
	// CORRUPT_MESSAGE.
	ErrDecompressedTooLarge = fmt.Errorf("record: decompressed size above the limit: %w", kerr.CorruptMessage)
	// ErrUnknownCodec reports a codec id above 4. It wraps
	// kerr.CorruptMessage.
	ErrUnknownCodec = fmt.Errorf("record: unknown compression codec: %w", kerr.CorruptMessage)
)

// xerialHeader starts snappy data framed the way the Java client's
// snappy-java writes it.
var xerialHeader = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// zstdDecoder is shared: DecodeAll is safe for concurrent use. Its memory
// limit is also its output limit.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxDecompressedBytes), zstd.WithDecoderConcurrency(0))
})

// Decompress expands src, compressed with codec, refusing output above
// limit bytes with ErrDecompressedTooLarge. Malformed input is an error
// wrapping kerr.CorruptMessage. With None it returns src itself; otherwise
// the result is a new slice the caller owns. Safe for concurrent use.
func Decompress(src []byte, codec Codec, limit int) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch codec {
	case None:
		if len(src) > limit {
			return nil, ErrDecompressedTooLarge
		}
		return src, nil
	case Gzip:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(src)); err == nil {
			out, err = readLimited(r, limit)
		}
	case Snappy:
		out, err = decompressSnappy(src, limit)
	case LZ4:
		out, err = readLimited(lz4.NewReader(bytes.NewReader(src)), limit)
	case Zstd:
		var d *zstd.Decoder
		if d, err = zstdDecoder(); err == nil {
			out, err = d.DecodeAll(src, nil)
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || len(out) > limit {
				return nil, ErrDecompressedTooLarge
			}
		}
	default:
		return nil, fmt.Errorf("%w %d", ErrUnknownCodec, codec)
	}
	if errors.Is(err, ErrDecompressedTooLarge) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w: %v", codec, kerr.CorruptMessage, err)
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

// decompressSnappy handles raw snappy blocks and xerial framing.
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

// compressors are franz-go's, one per codec: they pool their encoders and
// are safe for concurrent use, and a zstd encoder is costly to create, so
// every caller shares them.
var compressors = func() map[Codec]func() (kgo.Compressor, error) {
	m := make(map[Codec]func() (kgo.Compressor, error))
	for codec, kc := range map[Codec]kgo.CompressionCodec{
		Gzip:   kgo.GzipCompression(),
		Snappy: kgo.SnappyCompression(),
		LZ4:    kgo.Lz4Compression(),
		Zstd:   kgo.ZstdCompression(),
	} {
		m[codec] = sync.OnceValues(func() (kgo.Compressor, error) { return kgo.DefaultCompressor(kc) })
	}
	return m
}()

// scratch holds the buffers compressors write into.
var scratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Compress appends src compressed with codec to dst and returns the
// extended slice; with None it appends src as it is. It fails only for an
// unknown codec or a compressor fault. Safe for concurrent use.
func Compress(dst []byte, codec Codec, src []byte) ([]byte, error) {
	if codec == None {
		return append(dst, src...), nil
	}
	get, ok := compressors[codec]
	if !ok {
		return dst, fmt.Errorf("compress: %w %d", ErrUnknownCodec, codec)
	}
	comp, err := get()
	if err != nil {
		return dst, fmt.Errorf("compressor for %s: %w", codec, err)
	}
	buf := scratch.Get().(*bytes.Buffer)
	defer scratch.Put(buf)
	buf.Reset()
	out, used := comp.Compress(buf, src)
	if Codec(used) != codec {
		return dst, fmt.Errorf("compress %d bytes with %s: compressor used codec %d", len(src), codec, used)
	}
	// out may alias the pooled buffer's storage: copy it out before the
	// buffer goes back.
	return append(dst, out...), nil
}
