package log

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Time index entry (file suffix .timeindex), big-endian, written together
// with each offset index entry (so entry i of both files names the same
// batch):
//
//	offset  size  field
//	     0     8  maxTimestamp    (largest batch MaxTimestamp in the segment
//	                               up to and including this batch, ms)
//	     8     4  relativeOffset  (batch base offset - segment base offset)
const timeEntrySize = 12

// timeEntry is one decoded time index entry; timestamps never decrease.
type timeEntry struct {
	maxTimestamp   int64
	relativeOffset uint32
}

// appendTimeEntry appends the encoding of e to b.
func appendTimeEntry(b []byte, e timeEntry) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(e.maxTimestamp))
	return binary.BigEndian.AppendUint32(b, e.relativeOffset)
}

// decodeTimeIndex decodes a time index file's bytes and checks it against
// the segment's offset index: same number of entries, same relative
// offsets, timestamps never decreasing. Errors wrap ErrCorruptIndex.
func decodeTimeIndex(b []byte, offsets []indexEntry) ([]timeEntry, error) {
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("%w: time index size %d is not a multiple of %d", ErrCorruptIndex, len(b), timeEntrySize)
	}
	if len(b)/timeEntrySize != len(offsets) {
		return nil, fmt.Errorf("%w: time index has %d entries, offset index %d", ErrCorruptIndex, len(b)/timeEntrySize, len(offsets))
	}
	entries := make([]timeEntry, len(offsets))
	for i := range entries {
		e := timeEntry{
			maxTimestamp:   int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			relativeOffset: binary.BigEndian.Uint32(b[i*timeEntrySize+8:]),
		}
		if e.relativeOffset != offsets[i].relativeOffset {
			return nil, fmt.Errorf("%w: time index entry %d names relative offset %d, offset index %d", ErrCorruptIndex, i, e.relativeOffset, offsets[i].relativeOffset)
		}
		if i > 0 && e.maxTimestamp < entries[i-1].maxTimestamp {
			return nil, fmt.Errorf("%w: time index entry %d decreases", ErrCorruptIndex, i)
		}
		entries[i] = e
	}
	return entries, nil
}

// lookupTime returns the index of the last entry whose maxTimestamp is below
// ts, or -1: every batch up to and including that entry's batch has a
// MaxTimestamp below ts, so a search for ts may start at that batch.
func lookupTime(entries []timeEntry, ts int64) int {
	return sort.Search(len(entries), func(i int) bool { return entries[i].maxTimestamp >= ts }) - 1
}
