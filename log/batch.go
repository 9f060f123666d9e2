package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record batch format (magic 2), as Kafka defines it. All integers are
// big-endian. The CRC-32C covers bytes [21, end): attributes onward, so the
// broker may rewrite base offset and partition leader epoch without touching
// it.
//
//	offset  size  field
//	     0     8  baseOffset
//	     8     4  batchLength           (bytes after this field)
//	    12     4  partitionLeaderEpoch
//	    16     1  magic                 (2)
//	    17     4  crc                   (CRC-32C of bytes 21..end)
//	    21     2  attributes            (bits 0-2 compression, 3 timestamp
//	                                     type, 4 transactional, 5 control)
//	    23     4  lastOffsetDelta
//	    27     8  baseTimestamp         (called firstTimestamp by Kafka)
//	    35     8  maxTimestamp
//	    43     8  producerId
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61     …  records               (compressed as a whole if attributes say so)

// Batch header layout constants.
const (
	// BatchHeaderSize is the size in bytes of a v2 record batch header,
	// records excluded.
	BatchHeaderSize = 61
	// batchLengthOverhead is the number of bytes before the batchLength
	// field's coverage starts: baseOffset and batchLength themselves.
	batchLengthOverhead = 12
	// batchCRCStart is the first byte covered by the CRC.
	batchCRCStart = 21

	offsetBaseOffset     = 0
	offsetLength         = 8
	offsetLeaderEpoch    = 12
	offsetMagic          = 16
	offsetCRC            = 17
	offsetAttributes     = 21
	offsetLastDelta      = 23
	offsetBaseTimestamp  = 27
	offsetMaxTimestamp   = 35
	offsetProducerID     = 43
	offsetProducerEpoch  = 51
	offsetBaseSequence   = 53
	offsetRecordCount    = 57
	attributeCompression = 0x07
	attributeTimeType    = 0x08
	attributeTxn         = 0x10
	attributeControl     = 0x20
)

var (
	// ErrCorrupt reports bytes that are not a valid record batch: a bad
	// length, magic, CRC or record count. Wrapped errors say which.
	ErrCorrupt = errors.New("log: corrupt record batch")
	// ErrShortBatch reports a buffer that ends before the batch it starts
	// is complete. During recovery it marks a torn tail.
	ErrShortBatch = errors.New("log: truncated record batch")
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded fixed-size header of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size returns the whole batch size in bytes, header included.
func (h BatchHeader) Size() int { return int(h.Length) + batchLengthOverhead }

// LastOffset returns the offset of the last record in the batch.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset returns the offset just past the batch.
func (h BatchHeader) NextOffset() int64 { return h.LastOffset() + 1 }

// Compression returns the compression codec id: 0 none, 1 gzip, 2 snappy,
// 3 lz4, 4 zstd.
func (h BatchHeader) Compression() int8 { return int8(h.Attributes & attributeCompression) }

// LogAppendTime reports whether the batch's timestamps are broker
// LogAppendTime rather than producer CreateTime.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attributeTimeType != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h BatchHeader) Transactional() bool { return h.Attributes&attributeTxn != 0 }

// Control reports whether the batch is a control batch (transaction marker).
func (h BatchHeader) Control() bool { return h.Attributes&attributeControl != 0 }

// Idempotent reports whether the batch carries a producer id.
func (h BatchHeader) Idempotent() bool { return h.ProducerID >= 0 }

// LastSequence returns the sequence number of the last record, wrapping at
// int32 as Kafka does.
func (h BatchHeader) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return -1
	}
	last := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if last > 1<<31-1 {
		last -= 1 << 31
	}
	return int32(last)
}

// ParseBatchHeader decodes the header at the start of b without checking
// the CRC. It fails with ErrShortBatch when b is shorter than a header and
// with ErrCorrupt when the length or magic are impossible. It does not
// require b to hold the whole batch.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrShortBatch, len(b), BatchHeaderSize)
	}
	h := BatchHeader{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offsetBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[offsetLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offsetLeaderEpoch:])),
		Magic:                int8(b[offsetMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offsetCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offsetAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offsetLastDelta:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[offsetBaseTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offsetMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offsetProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offsetProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offsetBaseSequence:])),
		RecordCount:          int32(binary.BigEndian.Uint32(b[offsetRecordCount:])),
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d, want 2", ErrCorrupt, h.Magic)
	}
	if h.Length < BatchHeaderSize-batchLengthOverhead {
		return h, fmt.Errorf("%w: batch length %d below header size", ErrCorrupt, h.Length)
	}
	return h, nil
}

// VerifyBatch checks that b begins with one complete, well-formed batch and
// returns its header. It checks length, magic, CRC-32C and the record count
// against lastOffsetDelta; for uncompressed batches it also walks the
// records' length prefixes. It never decompresses. Errors wrap ErrCorrupt
// or ErrShortBatch.
func VerifyBatch(b []byte) (BatchHeader, error) {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, err
	}
	size := h.Size()
	if len(b) < size {
		return h, fmt.Errorf("%w: batch of %d bytes, have %d", ErrShortBatch, size, len(b))
	}
	if got := crc32.Checksum(b[batchCRCStart:size], crc32c); got != h.CRC {
		return h, fmt.Errorf("%w: crc %08x, header says %08x", ErrCorrupt, got, h.CRC)
	}
	if h.LastOffsetDelta < 0 || h.RecordCount < 0 {
		return h, fmt.Errorf("%w: negative lastOffsetDelta %d or record count %d", ErrCorrupt, h.LastOffsetDelta, h.RecordCount)
	}
	if int64(h.RecordCount) > int64(h.LastOffsetDelta)+1 {
		// Compaction may leave fewer records than offsets, never more.
		return h, fmt.Errorf("%w: %d records in %d offsets", ErrCorrupt, h.RecordCount, int64(h.LastOffsetDelta)+1)
	}
	if h.Compression() > 4 {
		return h, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, h.Compression())
	}
	if h.Compression() == 0 {
		if n, err := countRecords(b[BatchHeaderSize:size]); err != nil {
			return h, err
		} else if n != int(h.RecordCount) {
			return h, fmt.Errorf("%w: header counts %d records, body holds %d", ErrCorrupt, h.RecordCount, n)
		}
	}
	return h, nil
}

// VerifyProducedBatch is VerifyBatch plus the rules a batch from a client
// must meet: at least one record, offsets dense (lastOffsetDelta equal to
// record count minus one) and not a control batch.
func VerifyProducedBatch(b []byte) (BatchHeader, error) {
	h, err := VerifyBatch(b)
	if err != nil {
		return h, err
	}
	if h.RecordCount == 0 || int64(h.LastOffsetDelta) != int64(h.RecordCount)-1 {
		return h, fmt.Errorf("%w: %d records with lastOffsetDelta %d", ErrCorrupt, h.RecordCount, h.LastOffsetDelta)
	}
	return h, nil
}

// countRecords walks uncompressed records, each prefixed by its zigzag
// varint length, and returns how many there are.
func countRecords(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		length, used := binary.Varint(b)
		if used <= 0 || length < 0 || int64(len(b)-used) < length {
			return n, fmt.Errorf("%w: record %d has a bad length prefix", ErrCorrupt, n)
		}
		b = b[used+int(length):]
		n++
	}
	return n, nil
}

// SetBaseOffset writes the base offset into the batch header at the start of
// b. The CRC does not cover it.
func SetBaseOffset(b []byte, offset int64) {
	binary.BigEndian.PutUint64(b[offsetBaseOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch writes the leader epoch into the batch header at
// the start of b. The CRC does not cover it.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offsetLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch at the start of b as LogAppendTime with
// the given max timestamp (milliseconds) and recomputes the CRC, which covers
// both fields. b must hold the whole batch.
func SetLogAppendTime(b []byte, timestamp int64) {
	attributes := binary.BigEndian.Uint16(b[offsetAttributes:]) | attributeTimeType
	binary.BigEndian.PutUint16(b[offsetAttributes:], attributes)
	binary.BigEndian.PutUint64(b[offsetMaxTimestamp:], uint64(timestamp))
	SetCRC(b)
}

// AppendBatch appends to dst a complete v2 batch: the header fields of h
// (BaseOffset, PartitionLeaderEpoch, Attributes, LastOffsetDelta,
// BaseTimestamp, MaxTimestamp, ProducerID, ProducerEpoch, BaseSequence,
// RecordCount) followed by records, the records section exactly as it is
// to be stored (already compressed when h's attributes say so). Length,
// Magic (2) and the CRC-32C are computed; h's values for them are ignored.
// It returns the extended slice. It checks nothing: encoding records and
// choosing consistent header fields is the caller's work.
func AppendBatch(dst []byte, h BatchHeader, records []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.BaseOffset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(BatchHeaderSize-batchLengthOverhead+len(records)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.PartitionLeaderEpoch))
	dst = append(dst, 2)                        // magic
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, below
	dst = binary.BigEndian.AppendUint16(dst, uint16(h.Attributes))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.LastOffsetDelta))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.BaseTimestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.MaxTimestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.ProducerID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(h.ProducerEpoch))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.BaseSequence))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.RecordCount))
	dst = append(dst, records...)
	SetCRC(dst[start:])
	return dst
}

// SetCRC recomputes the CRC-32C of the whole batch at the start of b, after
// a change to the bytes it covers (attributes onward). b must hold the
// whole batch; its length field says how long the batch is.
func SetCRC(b []byte) {
	size := int(int32(binary.BigEndian.Uint32(b[offsetLength:]))) + batchLengthOverhead
	binary.BigEndian.PutUint32(b[offsetCRC:], crc32.Checksum(b[batchCRCStart:size], crc32c))
}

// SplitBatches calls fn for each whole batch in b, in order, with the batch's
// bytes (a sub-slice of b) and its header, after VerifyBatch. It stops at the
// first error from verification or fn. Trailing bytes that do not form a
// complete batch are an ErrShortBatch error.
func SplitBatches(b []byte, fn func(batch []byte, h BatchHeader) error) error {
	for len(b) > 0 {
		h, err := VerifyBatch(b)
		if err != nil {
			return err
		}
		if err := fn(b[:h.Size()], h); err != nil {
			return err
		}
		b = b[h.Size():]
	}
	return nil
}
