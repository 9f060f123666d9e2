package record

import (
	"fmt"
	"math"

	"github.com/sluice-io/sluice/log"
)

// AppendBatch appends to dst a complete v2 batch with header h and the
// records of section, an uncompressed records section, compressed with the
// codec h's attributes name. Every header field comes from h as given
// (log.AppendBatch computes length, magic and CRC), so h's record count,
// last offset delta and timestamps must describe section. It returns the
// extended slice; it fails only as Compress does.
func AppendBatch(dst []byte, h log.BatchHeader, section []byte) ([]byte, error) {
	codec := Codec(h.Compression())
	if codec == None {
		return log.AppendBatch(dst, h, section), nil
	}
	compressed, err := Compress(nil, codec, section)
	if err != nil {
		return dst, err
	}
	return log.AppendBatch(dst, h, compressed), nil
}

// Builder builds one v2 batch of new records, as a producer does: offset
// deltas 0, 1, 2, ..., base timestamp the first record's, max timestamp
// the largest. The zero Builder builds an uncompressed batch with no
// producer (id, epoch and base sequence -1), base offset 0 and leader
// epoch -1; set Codec and Producer to change that.
// A Builder is not safe for concurrent use; Reset reuses its memory.
type Builder struct {
	// Codec compresses the records section. Default None.
	Codec Codec
	// Producer, when not nil, makes the batch idempotent. Default nil.
	Producer *Producer

	section      []byte
	headers      []byte
	count        int32
	baseTime     int64
	maxTimestamp int64
}

// Producer names an idempotent producer and the sequence of the batch's
// first record.
type Producer struct {
	ID           int64
	Epoch        int16
	BaseSequence int32
}

// Add appends a record with the given timestamp (milliseconds), key and
// value (nil: null) and headers. Key, value and headers are copied.
func (b *Builder) Add(timestamp int64, key, value []byte, headers ...Header) {
	if b.count == 0 {
		b.baseTime, b.maxTimestamp = timestamp, timestamp
	}
	b.maxTimestamp = max(b.maxTimestamp, timestamp)
	r := Record{TimestampDelta: timestamp - b.baseTime, OffsetDelta: b.count, Key: key, Value: value}
	if len(headers) > 0 {
		b.headers = AppendHeaders(b.headers[:0], headers)
		r.Headers = b.headers
	}
	b.section = AppendRecord(b.section, &r)
	b.count++
}

// Len returns the number of records added.
func (b *Builder) Len() int { return int(b.count) }

// Reset forgets the records added, keeping Codec, Producer and memory.
func (b *Builder) Reset() {
	b.section, b.count = b.section[:0], 0
}

// AppendTo appends the batch to dst and returns the extended slice. It
// fails when no record was added, when the record count overflows int32,
// or as Compress does. The Builder is unchanged: AppendTo may be called
// again.
func (b *Builder) AppendTo(dst []byte) ([]byte, error) {
	if b.count == 0 || b.count == math.MaxInt32 {
		return dst, fmt.Errorf("record: cannot build a batch of %d records", b.count)
	}
	h := log.BatchHeader{
		PartitionLeaderEpoch: -1,
		Attributes:           int16(b.Codec) & 0x07,
		LastOffsetDelta:      b.count - 1,
		BaseTimestamp:        b.baseTime,
		MaxTimestamp:         b.maxTimestamp,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		RecordCount:          b.count,
	}
	if b.Producer != nil {
		h.ProducerID, h.ProducerEpoch, h.BaseSequence = b.Producer.ID, b.Producer.Epoch, b.Producer.BaseSequence
	}
	return AppendBatch(dst, h, b.section)
}
