package record

import (
	"fmt"
	"sync"

	"github.com/sluice-io/sluice/log"
)

// sections are the buffers CheckProduced decompresses into; one above
// maxPooledSection bytes is left to the garbage collector.
var sections = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledSection = 4 << 20

// CheckProduced decodes every record of the produced batch b (whole, its
// header h already checked by log.VerifyProducedBatch), as a consumer
// will, and fails when a consumer could not: the records section does not
// decompress within limit bytes, a record does not decode, the section
// holds a different number of records than h.RecordCount, or record i's
// offset delta is not i (produced offsets are dense, as Kafka's
// LogValidator requires). Such errors wrap log.ErrCorrupt and
// kerr.CorruptMessage where the payload did not decompress.
//
// fn, when not nil, is called with each record as it is decoded (it is
// overwritten by the next) so a caller can apply its own rules in the
// same pass; its first error stops the check and is returned unwrapped.
// A compressed batch's records alias a buffer reused once CheckProduced
// returns: fn must copy what it keeps. Safe for concurrent use.
func CheckProduced(b []byte, h log.BatchHeader, limit int, fn func(*Record) error) error {
	if h.Size() < log.BatchHeaderSize || len(b) < h.Size() {
		return fmt.Errorf("%w: batch of %d bytes, have %d", log.ErrShortBatch, h.Size(), len(b))
	}
	section := b[log.BatchHeaderSize:h.Size()]
	if codec := Codec(h.Compression()); codec != None {
		// The records are not kept past the check: decompress into a
		// pooled buffer.
		buf := sections.Get().(*[]byte)
		defer func() {
			if cap(*buf) <= maxPooledSection {
				sections.Put(buf)
			}
		}()
		var err error
		if *buf, err = AppendDecompressed((*buf)[:0], section, codec, limit); err != nil {
			return fmt.Errorf("%w: %w", log.ErrCorrupt, err)
		}
		section = *buf
	}
	it := NewIter(section)
	for it.Next() {
		r := it.Record()
		i := it.Count() - 1
		if i >= int(h.RecordCount) {
			return fmt.Errorf("%w: more than the %d records the header counts", log.ErrCorrupt, h.RecordCount)
		}
		if int(r.OffsetDelta) != i {
			return fmt.Errorf("%w: record %d has offset delta %d", log.ErrCorrupt, i, r.OffsetDelta)
		}
		if fn != nil {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if it.Count() != int(h.RecordCount) {
		return fmt.Errorf("%w: header counts %d records, section holds %d", log.ErrCorrupt, h.RecordCount, it.Count())
	}
	return nil
}
