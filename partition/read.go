package partition

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
)

// Isolation is a fetch's isolation level.
type Isolation int8

// Isolation levels, as Kafka numbers them.
const (
	ReadUncommitted Isolation = 0
	ReadCommitted   Isolation = 1
)

// ReadRequest says what Read returns.
type ReadRequest struct {
	Offset      int64
	MaxBytes    int
	MinOneBatch bool // return the first batch even above MaxBytes (KIP-74)
	Isolation   Isolation
	// Buffer, if set, provides the memory the batches are read into
	// instead of the heap; see log.ReadRequest.Buffer.
	Buffer func(size int) []byte
}

// ReadResult is what Read returns: the batches (dst extended) and the
// partition's offsets at the time of the read.
type ReadResult struct {
	Records          []byte
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	// Aborted lists, for a ReadCommitted read, the aborted transactions
	// whose data may lie in Records (oldest first), as Fetch reports them.
	Aborted []AbortedTxn
}

// Read appends whole batches from req.Offset up to the high watermark (or
// last stable offset for ReadCommitted) to dst. A ReadCommitted read also
// returns, in Aborted, the aborted transactions that may hold records of
// the batches returned (last offset at or after req.Offset, first offset
// before the end of the last batch returned), as Fetch reports them; the
// consumer drops those producers' records from each first offset up to
// the producer's ABORT marker. An offset below the log
// start or above the high watermark is kerr.OffsetOutOfRange.
//
// An offset at the high watermark (or between the last stable offset and
// the high watermark for ReadCommitted) returns dst unchanged and no error:
// the fetcher is caught up and may wait on a Waiter. The first batch
// returned may begin before req.Offset (the batch containing it); the
// consumer skips the records before its offset. Read never blocks Append.
// After Close it returns ErrClosed.
func (r *Replica) Read(dst []byte, req ReadRequest) (ReadResult, error) {
	if r.closed.Load() {
		return ReadResult{Records: dst}, ErrClosed
	}
	o := r.Offsets()
	res := ReadResult{
		Records:          dst,
		HighWatermark:    o.HighWatermark,
		LastStableOffset: o.LastStable,
		LogStartOffset:   o.LogStart,
	}
	if req.Offset < o.LogStart || req.Offset > o.HighWatermark {
		return res, kerr.OffsetOutOfRange
	}
	bound := o.HighWatermark
	if req.Isolation == ReadCommitted {
		bound = o.LastStable
	}
	if req.Offset >= bound {
		return res, nil
	}
	records, err := r.log.Read(dst, log.ReadRequest{
		Offset:      req.Offset,
		MaxOffset:   bound,
		MaxBytes:    req.MaxBytes,
		MinOneBatch: req.MinOneBatch,
		Buffer:      req.Buffer,
	})
	switch {
	case errors.Is(err, log.ErrOffsetOutOfRange):
		// Retention moved the log start past the offset since we looked.
		res.LogStartOffset = r.log.StartOffset()
		return res, kerr.OffsetOutOfRange
	case errors.Is(err, log.ErrClosed):
		return res, ErrClosed
	case err != nil:
		return res, fmt.Errorf("partition: read %s-%d at offset %d: %w", r.topic, r.partition, req.Offset, err)
	}
	res.Records = records
	if req.Isolation == ReadCommitted && len(records) > len(dst) {
		res.Aborted = r.txns.abortedIn(req.Offset, func() int64 { return batchesEnd(records[len(dst):]) })
	}
	return res, nil
}

// batchesEnd returns the offset after the last whole batch of b (batches
// back to back, as Read returns them), or -1 when b holds none. It hops
// from batch to batch by their length fields and parses only the last
// header.
func batchesEnd(b []byte) int64 {
	last := -1
	for pos := 0; len(b)-pos >= log.BatchHeaderSize; {
		size := 12 + int(binary.BigEndian.Uint32(b[pos+8:]))
		if size < log.BatchHeaderSize || size > len(b)-pos {
			break
		}
		last, pos = pos, pos+size
	}
	if last < 0 {
		return -1
	}
	h, err := log.ParseBatchHeader(b[last:])
	if err != nil {
		return -1
	}
	return h.NextOffset()
}
