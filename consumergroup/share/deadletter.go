package share

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication/configs"
)

// The provenance headers of a dead letter (KIP-1191).
const (
	HeaderTopic         = "__dlq.errors.topic"
	HeaderPartition     = "__dlq.errors.partition"
	HeaderOffset        = "__dlq.errors.offset"
	HeaderGroup         = "__dlq.errors.group"
	HeaderDeliveryCount = "__dlq.errors.delivery.count"
	HeaderMessage       = "__dlq.errors.message"
)

// DeadLetter is a record written to a share group's dead-letter topic.
type DeadLetter struct {
	// SourcePartition is the partition the record came from: the writer
	// puts it in partition SourcePartition mod the dead-letter topic's
	// partition count, as Kafka does.
	SourcePartition int32
	// Timestamp is the original record's, in Unix milliseconds.
	Timestamp int64
	// Key and Value are the original record's when the group copies
	// records (errors.deadletterqueue.copy.record.enable), else nil.
	Key, Value []byte
	// Headers are the provenance headers, after the original record's
	// own when copied.
	Headers []record.Header
}

// DeadLetterWriter appends dead letters to a topic and returns once they
// are committed (acks=all), or an error. Safe for concurrent use.
type DeadLetterWriter interface {
	WriteDeadLetters(ctx context.Context, topic string, letters []DeadLetter) error
}

// errDeadLetterRead marks a dead-lettered record that could not be read
// back from its partition.
var errDeadLetterRead = errors.New("share: read record to dead-letter")

// maxDeadLetterBatch bounds the decompressed size of a batch read back to
// dead-letter its records.
const maxDeadLetterBatch = 64 << 20

// writeDeadLetters reads the records of refs from sp's partition and
// writes them, with their provenance, to the group's dead-letter topic.
// Without a writer the records are only archived.
func (m *Manager) writeDeadLetters(ctx context.Context, group string, sp *sharePartition, cfg configs.ShareGroup, refs []deadLetterRef) error {
	if m.deadLetters == nil || cfg.DeadLetterTopic == "" {
		return nil
	}
	refs = slices.Clone(refs)
	slices.SortFunc(refs, func(a, b deadLetterRef) int { return cmp.Compare(a.offset, b.offset) })
	letters := make([]DeadLetter, 0, len(refs))
	var batch []byte // the last batch read, which may hold the next ref too
	var header struct{ first, last int64 }
	for _, ref := range refs {
		if batch == nil || ref.offset < header.first || ref.offset > header.last {
			rr, err := sp.data.Read(nil, partition.ReadRequest{Offset: ref.offset, MaxBytes: 1, MinOneBatch: true})
			if err != nil {
				return fmt.Errorf("%w %d of %s-%d: %w", errDeadLetterRead, ref.offset, sp.topic, sp.key.Partition, err)
			}
			batch = rr.Records
			if len(batch) == 0 {
				return fmt.Errorf("%w %d of %s-%d: not in the log", errDeadLetterRead, ref.offset, sp.topic, sp.key.Partition)
			}
		}
		h, it, err := record.Records(batch, maxDeadLetterBatch)
		if err != nil {
			return fmt.Errorf("%w %d of %s-%d: %w", errDeadLetterRead, ref.offset, sp.topic, sp.key.Partition, err)
		}
		header.first, header.last = h.BaseOffset, h.LastOffset()
		letter := DeadLetter{SourcePartition: sp.key.Partition, Timestamp: h.BaseTimestamp}
		for it.Next() {
			r := it.Record()
			if h.BaseOffset+int64(r.OffsetDelta) != ref.offset {
				continue
			}
			letter.Timestamp = h.BaseTimestamp + r.TimestampDelta
			if cfg.DeadLetterCopyRecord {
				letter.Key, letter.Value = slices.Clone(r.Key), slices.Clone(r.Value)
				if letter.Headers, err = decodeHeaders(r.Headers); err != nil {
					return fmt.Errorf("%w %d of %s-%d: %w", errDeadLetterRead, ref.offset, sp.topic, sp.key.Partition, err)
				}
			}
			break
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("%w %d of %s-%d: %w", errDeadLetterRead, ref.offset, sp.topic, sp.key.Partition, err)
		}
		letter.Headers = append(letter.Headers,
			record.Header{Key: HeaderTopic, Value: []byte(sp.topic)},
			record.Header{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(sp.key.Partition), 10)},
			record.Header{Key: HeaderOffset, Value: strconv.AppendInt(nil, ref.offset, 10)},
			record.Header{Key: HeaderGroup, Value: []byte(group)},
			record.Header{Key: HeaderDeliveryCount, Value: strconv.AppendInt(nil, int64(ref.deliveries), 10)},
			record.Header{Key: HeaderMessage, Value: []byte(ref.reason.message())},
		)
		letters = append(letters, letter)
	}
	if err := m.deadLetters.WriteDeadLetters(ctx, cfg.DeadLetterTopic, letters); err != nil {
		return fmt.Errorf("write %d dead letters of group %q to %s: %w", len(letters), group, cfg.DeadLetterTopic, err)
	}
	return nil
}

// errHeaders marks a record's headers that do not decode.
var errHeaders = errors.New("share: record headers do not decode")

// decodeHeaders decodes a record's encoded headers (record.Record.Headers:
// a varint count, then per header a varint key length, the key, a varint
// value length (-1 for null) and the value). Nil or empty input is no
// headers. The values alias b.
func decodeHeaders(b []byte) ([]record.Header, error) {
	if len(b) == 0 {
		return nil, nil
	}
	count, n := binary.Varint(b)
	if n <= 0 || count < 0 || count > int64(len(b)) {
		return nil, fmt.Errorf("%w: bad count", errHeaders)
	}
	b = b[n:]
	out := make([]record.Header, 0, count)
	for i := int64(0); i < count; i++ {
		keyLen, n := binary.Varint(b)
		if n <= 0 || keyLen < 0 || keyLen > int64(len(b)-n) {
			return nil, fmt.Errorf("%w: header %d key", errHeaders, i)
		}
		b = b[n:]
		key := string(b[:keyLen])
		b = b[keyLen:]
		valueLen, n := binary.Varint(b)
		if n <= 0 || valueLen < -1 || valueLen > int64(len(b)-n) {
			return nil, fmt.Errorf("%w: header %d value", errHeaders, i)
		}
		b = b[n:]
		var value []byte
		if valueLen >= 0 {
			value = b[:valueLen:valueLen]
			b = b[valueLen:]
		}
		out = append(out, record.Header{Key: key, Value: value})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errHeaders, len(b))
	}
	return out, nil
}
