package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
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
	if codec == None {
		if len(src) > limit {
			return nil, ErrDecompressedTooLarge
		}
		return src, nil
	}
	return AppendDecompressed(nil, src, codec, limit)
}

// AppendDecompressed appends src, expanded from codec, to dst and returns
// the extended slice, refusing more than limit expanded bytes with
// ErrDecompressedTooLarge; with None it appends src. Passing a dst with
// spare capacity (a reused buffer) saves the allocation. Errors are as
// Decompress's. Safe for concurrent use.
func AppendDecompressed(dst, src []byte, codec Codec, limit int) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch codec {
	case None:
		if len(src) > limit {
			return dst, ErrDecompressedTooLarge
		}
		return append(dst, src...), nil
	case Gzip:
		r := gzipReaders.Get().(*gzip.Reader)
		if err = r.Reset(bytes.NewReader(src)); err == nil {
			out, err = appendLimited(dst, r, limit)
		}
		gzipReaders.Put(r)
	case Snappy:
		out, err = decompressSnappy(dst, src, limit)
	case LZ4:
		r := lz4Readers.Get().(*lz4.Reader)
		r.Reset(bytes.NewReader(src))
		out, err = appendLimited(dst, r, limit)
		r.Reset(nil)
		lz4Readers.Put(r)
	case Zstd:
		var d *zstd.Decoder
		if d, err = zstdDecoder(); err == nil {
			out, err = d.DecodeAll(src, dst)
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || len(out)-len(dst) > limit {
				return dst, ErrDecompressedTooLarge
			}
		}
	default:
		return dst, fmt.Errorf("%w %d", ErrUnknownCodec, codec)
	}
	if errors.Is(err, ErrDecompressedTooLarge) {
		return dst, err
	}
	if err != nil {
		return dst, fmt.Errorf("decompress %s: %w: %v", codec, kerr.CorruptMessage, err)
	}
	return out, nil
}

// Readers are pooled: a new gzip reader allocates its window and a new
// lz4 reader its block buffers, which costs more than decompressing a
// typical batch.
var (
	gzipReaders = sync.Pool{New: func() any { return new(gzip.Reader) }}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
)

// appendLimited reads r to the end, appending to dst, and fails once more
// than limit bytes come.
func appendLimited(dst []byte, r io.Reader, limit int) ([]byte, error) {
	start := len(dst)
	if cap(dst)-len(dst) < 4096 {
		dst = slices.Grow(dst, 4096)
	}
	for {
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst[:start], ErrDecompressedTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], err
		}
		if len(dst) == cap(dst) {
			// Read one byte past the limit at most, to tell "exactly
			// limit" from "more".
			grow := min(cap(dst)-start, limit+1-(len(dst)-start))
			dst = slices.Grow(dst, max(grow, 1))
		}
	}
}

// decompressSnappy appends raw snappy blocks or xerial framing to dst.
func decompressSnappy(dst, src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialHeader) {
		return decodeSnappyBlock(dst, src, limit)
	}
	if len(src) < 16 {
		return dst, errors.New("xerial snappy header cut short")
	}
	src = src[16:]
	start := len(dst)
	for len(src) > 0 {
		if len(src) < 4 {
			return dst, errors.New("xerial snappy chunk length cut short")
		}
		n := int(binary.BigEndian.Uint32(src))
		src = src[4:]
		if n < 0 || n > len(src) {
			return dst, fmt.Errorf("xerial snappy chunk of %d bytes, %d left", n, len(src))
		}
		var err error
		if dst, err = decodeSnappyBlock(dst, src[:n], limit-(len(dst)-start)); err != nil {
			return dst, err
		}
		src = src[n:]
	}
	return dst, nil
}

// decodeSnappyBlock appends one decoded snappy block to dst, checking its
// declared length against limit before allocating.
func decodeSnappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return dst, err
	}
	if n > limit {
		return dst, ErrDecompressedTooLarge
	}
	out := slices.Grow(dst, n)
	if _, err := s2.Decode(out[len(dst):len(dst)+n], block); err != nil {
		return dst, err
	}
	return out[:len(dst)+n], nil
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
