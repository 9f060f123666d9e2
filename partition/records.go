package partition

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/sluice-io/sluice/log"
)

// Record format (magic 2) inside a batch's (decompressed) records section;
// integers are zigzag varints unless said otherwise:
//
//	length          bytes after this field
//	attributes      int8 (unused, 0)
//	timestampDelta  varlong, from the batch's baseTimestamp
//	offsetDelta     varint, from the batch's baseOffset
//	keyLength       -1 for a null key
//	key
//	valueLength     -1 for a null value (a tombstone)
//	value
//	headerCount
//	headers         headerKeyLength, headerKey, headerValueLength (-1
//	                null), headerValue; kept as raw bytes here
//
// deleteHorizonFlag is batch attribute bit 6 (KIP-534): the cleaner set
// the batch's baseTimestamp to the delete horizon of its tombstones, the
// time after which a later clean removes them. Record timestamps stay
// right: their deltas are relative to whatever baseTimestamp holds.
const deleteHorizonFlag = 0x40

// batchRecord is one decoded record; its slices point into the decoded
// body.
type batchRecord struct {
	attributes     int8
	timestampDelta int64
	offsetDelta    int64
	key, value     []byte // nil when null
	headers        []byte // headerCount and headers, raw
	raw            []byte // the whole record, length prefix included
}

// decodeRecords calls fn for every record of a decompressed records
// section, in order, stopping at fn's first error. Malformed bytes are an
// error wrapping log.ErrCorrupt.
func decodeRecords(body []byte, fn func(*batchRecord) error) error {
	var rec batchRecord
	for i := 0; len(body) > 0; i++ {
		length, n := binary.Varint(body)
		if n <= 0 || length < 1 || length > int64(len(body)-n) {
			return fmt.Errorf("record %d: %w: bad length", i, log.ErrCorrupt)
		}
		rec.raw = body[:n+int(length)]
		b := body[n : n+int(length)]
		body = body[n+int(length):]
		rec.attributes = int8(b[0])
		b = b[1:]
		var ok bool
		if rec.timestampDelta, b, ok = varint(b); !ok {
			return fmt.Errorf("record %d: %w: bad timestamp delta", i, log.ErrCorrupt)
		}
		if rec.offsetDelta, b, ok = varint(b); !ok {
			return fmt.Errorf("record %d: %w: bad offset delta", i, log.ErrCorrupt)
		}
		if rec.key, b, ok = nullableBytes(b); !ok {
			return fmt.Errorf("record %d: %w: bad key", i, log.ErrCorrupt)
		}
		if rec.value, b, ok = nullableBytes(b); !ok {
			return fmt.Errorf("record %d: %w: bad value", i, log.ErrCorrupt)
		}
		rec.headers = b
		if err := fn(&rec); err != nil {
			return err
		}
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

// appendRecord appends rec re-encoded with a new timestamp delta.
func encodeRecord(dst []byte, rec *batchRecord, timestampDelta int64) []byte {
	var body []byte
	body = append(body, byte(rec.attributes))
	body = binary.AppendVarint(body, timestampDelta)
	body = binary.AppendVarint(body, rec.offsetDelta)
	for _, b := range [][]byte{rec.key, rec.value} {
		if b == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(b)))
			body = append(body, b...)
		}
	}
	body = append(body, rec.headers...)
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

// batchFields are the header fields of a batch the cleaner writes; the
// rest (base offset, last offset delta, leader epoch, producer fields) are
// copied from the original header.
type batchFields struct {
	attributes                  int16
	baseTimestamp, maxTimestamp int64
	recordCount                 int32
}

// appendBatch appends to dst a v2 batch with h's offsets, epoch and
// producer fields, f's attributes, timestamps and count, and records (the
// records section as stored, compressed if f.attributes say so), with its
// CRC-32C computed.
func appendBatch(dst []byte, h *log.BatchHeader, f batchFields, records []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.BaseOffset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(log.BatchHeaderSize-12+len(records)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.PartitionLeaderEpoch))
	dst = append(dst, 2) // magic
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(f.attributes))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.LastOffsetDelta))
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.baseTimestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.maxTimestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.ProducerID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(h.ProducerEpoch))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.BaseSequence))
	dst = binary.BigEndian.AppendUint32(dst, uint32(f.recordCount))
	dst = append(dst, records...)
	binary.BigEndian.PutUint32(dst[start+17:], crc32.Checksum(dst[start+21:], crc32c))
	return dst
}
