package partition

import (
	"fmt"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// scanChunk bounds each read when OffsetForTimestamp must look past the
// batch the time index pointed at.
const scanChunk = 1 << 20

// OffsetForTimestamp returns the offset and timestamp of the first record
// (by offset) whose timestamp is >= ts, among records below the high
// watermark; found is false when there is none (ListOffsets then answers
// offset -1). It decompresses the one batch it lands in.
//
// Under LogAppendTime every record's timestamp is its batch's max
// timestamp. Should a batch's records not reach the max timestamp its
// header claims (a producer that lied), the search goes on with the next
// batches, as Kafka's does.
func (r *Replica) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	if r.closed.Load() {
		return -1, -1, false, ErrClosed
	}
	// The log start may lie inside a batch (DeleteRecords): no offset
	// below it is an answer.
	start := r.log.StartOffset()
	hwm := r.hwm.Load()
	buf, found, err := r.log.FindTimestamp(nil, ts)
	if err != nil {
		return -1, -1, false, fmt.Errorf("partition: find timestamp %d in %s-%d: %w", ts, r.topic, r.partition, err)
	}
	for found {
		var next int64
		for rest := buf; len(rest) > 0; {
			h, err := log.ParseBatchHeader(rest)
			if err != nil {
				return -1, -1, false, fmt.Errorf("partition: timestamp %d in %s-%d: %w", ts, r.topic, r.partition, err)
			}
			if h.LastOffset() >= hwm {
				return -1, -1, false, nil
			}
			if h.MaxTimestamp >= ts {
				if h.LogAppendTime() {
					return max(h.BaseOffset, start), h.MaxTimestamp, true, nil
				}
				hit := false
				err := eachRecord(h, rest[:h.Size()], func(o, t int64) bool {
					if t >= ts && o >= start {
						offset, timestamp, hit = o, t, true
						return false
					}
					return true
				})
				if err != nil {
					return -1, -1, false, fmt.Errorf("partition: timestamp %d in %s-%d: %w", ts, r.topic, r.partition, err)
				}
				if hit {
					return offset, timestamp, true, nil
				}
			}
			next = h.NextOffset()
			rest = rest[h.Size():]
		}
		if next >= hwm {
			break
		}
		buf, err = r.log.Read(buf[:0], log.ReadRequest{Offset: next, MaxOffset: hwm, MaxBytes: scanChunk, MinOneBatch: true})
		if err != nil {
			return -1, -1, false, fmt.Errorf("partition: timestamp %d in %s-%d: read at offset %d: %w", ts, r.topic, r.partition, next, err)
		}
		found = len(buf) > 0
	}
	return -1, -1, false, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp below the high watermark (ListOffsets -3, KIP-734);
// found is false for an empty partition.
//
// Ties go to the first record by offset. When the log's largest timestamp
// lies in batches not yet below the high watermark (durable mode, before
// the sync), the committed batches' headers are scanned instead.
func (r *Replica) MaxTimestamp() (offset, timestamp int64, found bool, err error) {
	if r.closed.Load() {
		return -1, -1, false, ErrClosed
	}
	hwm := r.hwm.Load()
	_, batch, found, err := r.log.MaxTimestamp(nil)
	if err != nil {
		return -1, -1, false, fmt.Errorf("partition: max timestamp of %s-%d: %w", r.topic, r.partition, err)
	}
	if !found {
		return -1, -1, false, nil
	}
	h, err := log.ParseBatchHeader(batch)
	if err != nil {
		return -1, -1, false, fmt.Errorf("partition: max timestamp of %s-%d: %w", r.topic, r.partition, err)
	}
	if h.LastOffset() >= hwm {
		if batch, found, err = r.maxTimestampBatchBelow(hwm); err != nil || !found {
			return -1, -1, false, err
		}
		if h, err = log.ParseBatchHeader(batch); err != nil {
			return -1, -1, false, fmt.Errorf("partition: max timestamp of %s-%d: %w", r.topic, r.partition, err)
		}
	}
	if h.LogAppendTime() {
		return h.BaseOffset, h.MaxTimestamp, true, nil
	}
	found = false
	err = eachRecord(h, batch[:h.Size()], func(o, t int64) bool {
		if !found || t > timestamp {
			offset, timestamp, found = o, t, true
		}
		return true
	})
	if err != nil {
		return -1, -1, false, fmt.Errorf("partition: max timestamp of %s-%d: %w", r.topic, r.partition, err)
	}
	if !found {
		return -1, -1, false, nil
	}
	return offset, timestamp, true, nil
}

// maxTimestampBatchBelow returns the first batch with the largest max
// timestamp among the batches below hwm, scanning headers only.
func (r *Replica) maxTimestampBatchBelow(hwm int64) ([]byte, bool, error) {
	var (
		best     int64
		bestBase int64 = -1
	)
	err := r.log.BatchHeaders(r.log.StartOffset(), func(h log.BatchHeader) bool {
		if h.LastOffset() >= hwm {
			return false
		}
		if bestBase < 0 || h.MaxTimestamp > best {
			best, bestBase = h.MaxTimestamp, h.BaseOffset
		}
		return true
	})
	if err != nil {
		return nil, false, fmt.Errorf("partition: max timestamp of %s-%d: scan headers: %w", r.topic, r.partition, err)
	}
	if bestBase < 0 {
		return nil, false, nil
	}
	batch, err := r.log.Read(nil, log.ReadRequest{Offset: bestBase, MaxOffset: hwm, MaxBytes: 1, MinOneBatch: true})
	if err != nil {
		return nil, false, fmt.Errorf("partition: max timestamp of %s-%d: read at offset %d: %w", r.topic, r.partition, bestBase, err)
	}
	return batch, len(batch) > 0, nil
}

// eachRecord calls fn with the offset and timestamp of each record of the
// whole batch b (header h), decompressing it if needed, until fn returns
// false. Errors wrap log.ErrCorrupt or log.ErrShortBatch.
func eachRecord(h log.BatchHeader, b []byte, fn func(offset, timestamp int64) bool) error {
	_, it, err := record.Records(b, MaxDecompressedBytes)
	if err != nil {
		return fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	for it.Next() {
		rec := it.Record()
		if !fn(h.BaseOffset+int64(rec.OffsetDelta), h.BaseTimestamp+rec.TimestampDelta) {
			return nil
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	return nil
}

// TimestampAt returns the offset and timestamp of the first record at or
// after offset and below the high watermark: for a consumer group, the
// record its committed offset points at, whose age is the group's time lag.
// found is false when there is none (offset at or above the high
// watermark). An offset below the log start answers the first record kept.
// It reads the one batch holding offset and decompresses it only under
// CreateTime; under LogAppendTime every record has the batch's max
// timestamp. A record without a timestamp (message format v0) reports -1.
// Safe for concurrent use; after Close it returns ErrClosed.
func (r *Replica) TimestampAt(offset int64) (recordOffset, timestamp int64, found bool, err error) {
	if r.closed.Load() {
		return -1, -1, false, ErrClosed
	}
	hwm := r.hwm.Load()
	offset = max(offset, r.log.StartOffset())
	for offset < hwm {
		buf, err := r.log.Read(nil, log.ReadRequest{Offset: offset, MaxOffset: hwm, MaxBytes: 1, MinOneBatch: true})
		if err != nil {
			return -1, -1, false, fmt.Errorf("partition: timestamp at offset %d in %s-%d: %w", offset, r.topic, r.partition, err)
		}
		if len(buf) == 0 {
			return -1, -1, false, nil
		}
		h, err := log.ParseBatchHeader(buf)
		if err != nil {
			return -1, -1, false, fmt.Errorf("partition: timestamp at offset %d in %s-%d: %w", offset, r.topic, r.partition, err)
		}
		if h.LogAppendTime() && !h.Control() {
			return max(offset, h.BaseOffset), h.MaxTimestamp, true, nil
		}
		hit := false
		if !h.Control() {
			err = eachRecord(h, buf[:h.Size()], func(o, t int64) bool {
				if o >= offset {
					recordOffset, timestamp, hit = o, t, true
					return false
				}
				return true
			})
			if err != nil {
				return -1, -1, false, fmt.Errorf("partition: timestamp at offset %d in %s-%d: %w", offset, r.topic, r.partition, err)
			}
		}
		if hit {
			return recordOffset, timestamp, true, nil
		}
		// Compaction emptied the batch's tail, or it is a control batch:
		// the next record is in a later batch.
		offset = h.NextOffset()
	}
	return -1, -1, false, nil
}
