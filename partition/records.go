package partition

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// MaxDecompressedBytes bounds what one batch's records section may expand
// to when the broker looks inside it (produce validation, compaction,
// timestamp lookups): record.MaxDecompressedBytes, 64 MiB. Producers'
// batches are bounded compressed (max.message.bytes), not expanded, so
// without this bound a few kilobytes of zeros could make the broker
// allocate gigabytes.
const MaxDecompressedBytes = record.MaxDecompressedBytes

// deleteHorizonFlag is batch attribute bit 6 (KIP-534): the cleaner set
// the batch's baseTimestamp to the delete horizon of its tombstones, the
// time after which a later clean removes them. Record timestamps stay
// right: their deltas are relative to whatever baseTimestamp holds.
const deleteHorizonFlag = 0x40

// errKeyless stops checkRecords at a record without a key in a compacted
// topic.
var errKeyless = errors.New("partition: record without a key in a compacted topic")

// skipRecordCheck turns checkRecords off. It is a test seam, set only by
// the benchmark that measures what the check costs.
var skipRecordCheck = false

// checkRecords decodes every record of the produced batch b (whole,
// verified, header h), decompressing within MaxDecompressedBytes, and
// refuses what a consumer could not read, as Kafka's LogValidator does: a
// payload that does not decompress (whatever the codec, even with a valid
// CRC), a record that does not decode, a record count other than the
// header's, offset deltas other than 0..n-1. Those are CorruptMessage:
// stored, such a batch would stop every consumer of the partition at it.
// In the same pass, under a cleanup policy with compact, a record without
// a key is InvalidRecord ("compacted topic cannot accept message without
// key"), so a batch is decompressed once.
//
// Called by validate with r.mu held, after checkProduced.
func (r *Replica) checkRecords(b []byte, h log.BatchHeader) error {
	if skipRecordCheck {
		return nil
	}
	var fn func(*record.Record) error
	if r.cfg.CleanupPolicy&CleanupCompact != 0 {
		fn = func(rec *record.Record) error {
			if rec.Key == nil {
				return errKeyless
			}
			return nil
		}
	}
	switch err := record.CheckProduced(b, h, MaxDecompressedBytes, fn); {
	case err == nil:
		return nil
	case errors.Is(err, errKeyless):
		return r.reject(kerr.InvalidRecord, err)
	default:
		return r.reject(kerr.CorruptMessage, fmt.Errorf("batch of %d records, codec %s: %w", h.RecordCount, record.Codec(h.Compression()), err))
	}
}
