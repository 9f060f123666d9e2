package consumergroup

import (
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
)

// replayChunk is how many bytes of the log ReplayLog reads at a time.
const replayChunk = 1 << 20

// ReplayLog reads partition h, which this node leads, from its log start
// to its high watermark (on a leader, every committed record) and calls
// fn with each record in offset order, control batches' included (fn
// tells them apart by the header). It is how a coordinator over an
// internal topic (group offsets, transactions, share-group state) rebuilds
// its state when it comes to lead a partition. The first read proves this
// node serves the partition (elsewhere it fails with
// NOT_LEADER_OR_FOLLOWER); the high watermark read after it bounds the
// replay. stopped is asked before each read: when it reports true the
// replay ends early with nil (the coordinator is closing). A trailing
// partial batch ends the replay; an error of fn ends it with that error.
func ReplayLog(h Partition, stopped func() bool, fn func(hdr log.BatchHeader, rec *record.Record) error) error {
	offset := h.Offsets().LogStart
	var end int64
	for first := true; first || offset < end; first = false {
		if stopped() {
			return nil
		}
		rr, err := h.Read(nil, partition.ReadRequest{Offset: offset, MaxBytes: replayChunk, MinOneBatch: true})
		if err != nil {
			return fmt.Errorf("read at offset %d: %w", offset, err)
		}
		if first {
			end = h.Offsets().HighWatermark
		}
		if len(rr.Records) == 0 {
			return nil
		}
		next, err := replayBatches(rr.Records, fn)
		if err != nil {
			return fmt.Errorf("at offset %d: %w", offset, err)
		}
		if next <= offset {
			return nil
		}
		offset = next
	}
	return nil
}

// replayBatches calls fn with every record of the whole batches in b and
// returns the offset after the last of them.
func replayBatches(b []byte, fn func(log.BatchHeader, *record.Record) error) (int64, error) {
	var next int64
	for len(b) > 0 {
		hdr, err := log.ParseBatchHeader(b)
		if errors.Is(err, log.ErrShortBatch) || err == nil && hdr.Size() > len(b) {
			break
		}
		if err != nil {
			return next, fmt.Errorf("decode batch: %w", err)
		}
		batch := b[:hdr.Size()]
		b = b[hdr.Size():]
		next = hdr.NextOffset()
		_, it, err := record.Records(batch, partition.MaxDecompressedBytes)
		if err != nil {
			return next, err
		}
		for it.Next() {
			if err := fn(hdr, it.Record()); err != nil {
				return next, err
			}
		}
		if err := it.Err(); err != nil {
			return next, fmt.Errorf("batch at offset %d: %w", hdr.BaseOffset, err)
		}
	}
	return next, nil
}
