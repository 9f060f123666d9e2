package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// ErrCorruptIndex reports an offset or time index file that cannot be
// trusted; Open rebuilds such an index from its segment.
var ErrCorruptIndex = errors.New("log: corrupt index")

// Offset index entry (file suffix .index), big-endian, one per
// IndexIntervalBytes of log:
//
//	offset  size  field
//	     0     4  relativeOffset  (batch base offset - segment base offset)
//	     4     4  position        (byte position of the batch in the .log)
const indexEntrySize = 8

// indexEntry is one decoded offset index entry. Entries of a segment are
// strictly increasing in both fields.
type indexEntry struct {
	relativeOffset uint32
	position       uint32
}

// appendIndexEntry appends the encoding of e to b.
func appendIndexEntry(b []byte, e indexEntry) []byte {
	b = binary.BigEndian.AppendUint32(b, e.relativeOffset)
	return binary.BigEndian.AppendUint32(b, e.position)
}

// decodeIndex decodes an offset index file's bytes, checking that its size
// is a whole number of entries, that entries strictly increase and that no
// position reaches logSize. Errors wrap ErrCorruptIndex.
func decodeIndex(b []byte, logSize int64) ([]indexEntry, error) {
	if len(b)%indexEntrySize != 0 {
		return nil, fmt.Errorf("%w: offset index size %d is not a multiple of %d", ErrCorruptIndex, len(b), indexEntrySize)
	}
	entries := make([]indexEntry, len(b)/indexEntrySize)
	for i := range entries {
		e := indexEntry{
			relativeOffset: binary.BigEndian.Uint32(b[i*indexEntrySize:]),
			position:       binary.BigEndian.Uint32(b[i*indexEntrySize+4:]),
		}
		if int64(e.position) >= logSize {
			return nil, fmt.Errorf("%w: offset index entry %d position %d beyond log size %d", ErrCorruptIndex, i, e.position, logSize)
		}
		if i > 0 && (e.relativeOffset <= entries[i-1].relativeOffset || e.position <= entries[i-1].position) {
			return nil, fmt.Errorf("%w: offset index entry %d does not increase", ErrCorruptIndex, i)
		}
		entries[i] = e
	}
	return entries, nil
}

// lookupIndex returns the position of the last entry whose relative offset
// is <= rel (the batch holding rel starts there or later), or 0 and -1 when
// no entry qualifies.
func lookupIndex(entries []indexEntry, rel uint32) (position int64, i int) {
	i = sort.Search(len(entries), func(i int) bool { return entries[i].relativeOffset > rel }) - 1
	if i < 0 {
		return 0, -1
	}
	return int64(entries[i].position), i
}
