package record

import (
	"fmt"

	"github.com/sluice-io/sluice/log"
)

// Iter walks the records of an uncompressed records section, in order:
//
//	it := record.NewIter(section)
//	for it.Next() {
//		r := it.Record()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
//
// It checks each record's framing and fields as it goes (record.go has
// the layout), and stops at the first that does not decode. It allocates
// nothing.
type Iter struct {
	rest   []byte
	index  int
	record Record
	err    error
}

// NewIter returns an iterator over section, an uncompressed records
// section (Decompress first, or use Records). The records it yields alias
// section.
func NewIter(section []byte) Iter {
	return Iter{rest: section}
}

// Next decodes the next record and reports whether there was one. It
// returns false at the end of the section and at the first record that
// does not decode (see Err).
func (it *Iter) Next() bool {
	if it.err != nil || len(it.rest) == 0 {
		return false
	}
	rest, err := decodeRecord(it.rest, &it.record)
	if err != nil {
		it.err = fmt.Errorf("record %d: %w", it.index, err)
		it.rest = nil
		return false
	}
	it.rest = rest
	it.index++
	return true
}

// Record returns the record Next decoded. It is overwritten by the next
// call to Next; its byte slices alias the section and stay valid.
func (it *Iter) Record() *Record { return &it.record }

// Count returns how many records Next has decoded so far.
func (it *Iter) Count() int { return it.index }

// Err returns why iteration stopped early, or nil when it reached the end
// of the section (or has not stopped yet). Errors wrap log.ErrCorrupt.
func (it *Iter) Err() error { return it.err }

// Records parses the header of the whole batch b, decompresses its records
// section within limit bytes and returns the header and an iterator over
// the records. It checks neither the CRC nor the record count (see
// log.VerifyBatch and CheckProduced). Errors wrap log.ErrShortBatch (b
// ends before the batch does) or log.ErrCorrupt (a bad header, a payload
// that does not decompress or expands past limit; these also wrap
// kerr.CorruptMessage).
func Records(b []byte, limit int) (log.BatchHeader, Iter, error) {
	h, err := log.ParseBatchHeader(b)
	if err != nil {
		return h, Iter{}, err
	}
	if len(b) < h.Size() {
		return h, Iter{}, fmt.Errorf("%w: batch of %d bytes, have %d", log.ErrShortBatch, h.Size(), len(b))
	}
	section, err := Decompress(b[log.BatchHeaderSize:h.Size()], Codec(h.Compression()), limit)
	if err != nil {
		return h, Iter{}, fmt.Errorf("batch at offset %d: %w: %w", h.BaseOffset, log.ErrCorrupt, err)
	}
	return h, NewIter(section), nil
}
