package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/sluice-io/sluice/log"
)

// Record format (magic 2), inside a batch's (decompressed) records
// section. Every integer is a zigzag varint (varlong for the timestamp
// delta); lengths of -1 mean null:
//
//	length             bytes after this field, at least 1
//	attributes         int8, unused (0)
//	timestampDelta     varlong, from the batch's baseTimestamp
//	offsetDelta        varint, from the batch's baseOffset (int32)
//	keyLength, key     -1: null key
//	valueLength, value -1: null value (a tombstone)
//	headerCount        at least 0, then per header:
//	  headerKeyLength, headerKey      never null
//	  headerValueLength, headerValue  -1: null
//
// The fields must account for length exactly, as Kafka's DefaultRecord
// requires.

// Record is one record of a v2 batch. Decoded records (Iter) alias the
// records section they came from.
type Record struct {
	// Attributes is the record's attribute byte; Kafka defines no bits.
	Attributes int8
	// TimestampDelta is the record's timestamp minus the batch's base
	// timestamp, in milliseconds.
	TimestampDelta int64
	// OffsetDelta is the record's offset minus the batch's base offset.
	OffsetDelta int32
	// Key and Value are nil when null; a nil Value is a tombstone.
	Key, Value []byte
	// Headers is the encoded header count and headers, as they appear in
	// the record. Nil encodes as no headers (a count of 0). AppendHeaders
	// encodes them.
	Headers []byte
	// Raw is the whole encoded record, length prefix included. Iter sets
	// it; AppendRecord ignores it.
	Raw []byte
}

// Header is one record header. Keys are never null; a nil Value is null.
type Header struct {
	Key   string
	Value []byte
}

// noHeaders is a header count of zero.
var noHeaders = []byte{0}

// errRecord marks a record that does not decode; every decode error wraps
// it and log.ErrCorrupt.
var errRecord = errors.New("record does not decode")

// AppendHeaders appends the encoding of headers (count, then each header)
// to dst, for Record.Headers.
func AppendHeaders(dst []byte, headers []Header) []byte {
	dst = binary.AppendVarint(dst, int64(len(headers)))
	for _, h := range headers {
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value)
	}
	return dst
}

// AppendRecord appends r encoded (length prefix first) to dst and returns
// the extended slice. r.Raw is ignored.
func AppendRecord(dst []byte, r *Record) []byte {
	headers := r.Headers
	if headers == nil {
		headers = noHeaders
	}
	size := 1 + varintLen(r.TimestampDelta) + varintLen(int64(r.OffsetDelta)) +
		nullableLen(r.Key) + nullableLen(r.Value) + len(headers)
	dst = binary.AppendVarint(dst, int64(size))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(r.OffsetDelta))
	dst = appendNullable(dst, r.Key)
	dst = appendNullable(dst, r.Value)
	return append(dst, headers...)
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func nullableLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

// varintLen is the size of v as a zigzag varint.
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// decodeRecord decodes the record at the start of b into r and returns the
// bytes after it. Key, Value, Headers and Raw alias b.
func decodeRecord(b []byte, r *Record) ([]byte, error) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 1 || length > int64(len(b)-n) {
		return b, fmt.Errorf("%w: %w: bad length", log.ErrCorrupt, errRecord)
	}
	r.Raw = b[: n+int(length) : n+int(length)]
	body, rest := b[n:n+int(length)], b[n+int(length):]
	r.Attributes = int8(body[0])
	body = body[1:]
	var (
		delta int64
		ok    bool
	)
	if r.TimestampDelta, body, ok = varint(body); !ok {
		return b, fmt.Errorf("%w: %w: bad timestamp delta", log.ErrCorrupt, errRecord)
	}
	if delta, body, ok = varint(body); !ok || delta < math.MinInt32 || delta > math.MaxInt32 {
		return b, fmt.Errorf("%w: %w: bad offset delta", log.ErrCorrupt, errRecord)
	}
	r.OffsetDelta = int32(delta)
	if r.Key, body, ok = nullableBytes(body); !ok {
		return b, fmt.Errorf("%w: %w: bad key", log.ErrCorrupt, errRecord)
	}
	if r.Value, body, ok = nullableBytes(body); !ok {
		return b, fmt.Errorf("%w: %w: bad value", log.ErrCorrupt, errRecord)
	}
	r.Headers = body
	if err := checkHeaders(body); err != nil {
		return b, err
	}
	return rest, nil
}

// checkHeaders checks that b is exactly a header count and that many
// headers.
func checkHeaders(b []byte) error {
	count, b, ok := varint(b)
	// Each header takes at least two bytes: a bound before looping.
	if !ok || count < 0 || count > int64(len(b)/2) {
		return fmt.Errorf("%w: %w: bad header count", log.ErrCorrupt, errRecord)
	}
	for i := int64(0); i < count; i++ {
		var key []byte
		if key, b, ok = nullableBytes(b); !ok || key == nil {
			return fmt.Errorf("%w: %w: bad key of header %d", log.ErrCorrupt, errRecord, i)
		}
		if _, b, ok = nullableBytes(b); !ok {
			return fmt.Errorf("%w: %w: bad value of header %d", log.ErrCorrupt, errRecord, i)
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %w: %d bytes after the headers", log.ErrCorrupt, errRecord, len(b))
	}
	return nil
}

func varint(b []byte) (int64, []byte, bool) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, b, false
	}
	return v, b[n:], true
}

// nullableBytes reads a length-prefixed byte string; length -1 is nil.
func nullableBytes(b []byte) ([]byte, []byte, bool) {
	n, b, ok := varint(b)
	switch {
	case !ok || n < -1 || n > int64(len(b)):
		return nil, b, false
	case n == -1:
		return nil, b, true
	}
	return b[:n:n], b[n:], true
}
