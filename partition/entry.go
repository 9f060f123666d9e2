package partition

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/sluice-io/sluice/log"
)

// Entry format, the bytes Raft carries for one produce request. All
// integers are big-endian.
//
//	offset  size  field
//	     0     1  version         (1)
//	     1     4  leaderEpoch     int32: the Raft term of the leader that
//	                              prepared the entry, stamped into every
//	                              batch by Apply
//	     5     8  logAppendTime   int64 milliseconds, or -1 for CreateTime
//	    13     4  crc             CRC-32C of bytes [0, 13)
//	    17     …  batches         one or more v2 record batches (log/batch.go)
//	                              back to back, to the end of the entry, as
//	                              the producer sent them
//
// The header CRC guards the two values the leader chose; the records are
// guarded by each batch's own CRC (bytes 21 onward), which Prepare checked.
// The base offset and leader epoch of each batch are not covered by either:
// Apply overwrites them. A new version changes the first byte; a replica
// refuses a version it does not know with ErrEntryVersion rather than
// guess, so an upgrade must reach every replica before a leader writes the
// new version.
const (
	entryVersion    = 1
	entryHeaderSize = 17
	entryCRCOffset  = 13
)

var (
	// ErrCorruptEntry reports bytes that are not a valid entry: too short,
	// a bad header CRC, a log append time below -1, or batches that do not
	// parse back to back. Wrapped errors say which.
	ErrCorruptEntry = errors.New("partition: corrupt replicated entry")
	// ErrEntryVersion reports an entry written by a newer version of
	// Sluice than this replica understands.
	ErrEntryVersion = errors.New("partition: unknown replicated entry version")
)

var (
	_ encoding.BinaryMarshaler = Entry{}
	_ encoding.BinaryAppender  = Entry{}
)

// Entry is the unit Raft replicates for a partition: one produce request
// as the leader accepted it (Prepare), with the two values only the leader
// may choose. Apply turns it into log batches the same way on every
// replica.
type Entry struct {
	// Batches holds one or more v2 record batches, concatenated, as the
	// producer sent them. Apply stamps base offset, leader epoch and
	// LogAppendTime into them in place. An Entry from Prepare aliases the
	// request; one from DecodeEntry aliases the decoded bytes.
	Batches []byte
	// LeaderEpoch is the leader epoch Apply writes into every batch: the
	// Raft term of the leader that prepared the entry.
	LeaderEpoch int32
	// LogAppendTime is the broker time in milliseconds that Apply writes as
	// every batch's max timestamp, read once from the leader's clock under
	// message.timestamp.type LogAppendTime; -1 under CreateTime.
	LogAppendTime int64
}

// MarshalBinary returns the entry's encoding (format above) in a new
// slice. It fails, wrapping ErrCorruptEntry, for an entry DecodeEntry would
// refuse.
func (e Entry) MarshalBinary() ([]byte, error) {
	return e.AppendBinary(make([]byte, 0, entryHeaderSize+len(e.Batches)))
}

// AppendBinary appends the entry's encoding to dst and returns the
// extended slice; on error dst is returned unchanged. Errors as
// MarshalBinary.
func (e Entry) AppendBinary(dst []byte) ([]byte, error) {
	if e.LogAppendTime < -1 {
		return dst, fmt.Errorf("%w: log append time %d", ErrCorruptEntry, e.LogAppendTime)
	}
	if _, err := countEntryBatches(e.Batches); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, entryVersion)
	dst = binary.BigEndian.AppendUint32(dst, uint32(e.LeaderEpoch))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.LogAppendTime))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crc32c))
	return append(dst, e.Batches...), nil
}

// DecodeEntry parses an entry encoded by MarshalBinary. The returned
// Entry's Batches aliases b, and Apply modifies those bytes: decode a copy
// of bytes anyone else may still read (a raft.Log's Data), and do not
// reuse b while the Entry is in use. It checks the header and that
// the batches parse back to back (magic, lengths, non-negative offset
// deltas), not the batches' CRCs. Errors wrap ErrCorruptEntry or
// ErrEntryVersion. Safe for any input: it never panics.
func DecodeEntry(b []byte) (Entry, error) {
	if len(b) < 1 {
		return Entry{}, fmt.Errorf("%w: empty", ErrCorruptEntry)
	}
	if b[0] != entryVersion {
		return Entry{}, fmt.Errorf("%w: version %d, this replica knows %d", ErrEntryVersion, b[0], entryVersion)
	}
	if len(b) < entryHeaderSize {
		return Entry{}, fmt.Errorf("%w: %d bytes, the header needs %d", ErrCorruptEntry, len(b), entryHeaderSize)
	}
	if got, want := crc32.Checksum(b[:entryCRCOffset], crc32c), binary.BigEndian.Uint32(b[entryCRCOffset:]); got != want {
		return Entry{}, fmt.Errorf("%w: header crc %08x, entry says %08x", ErrCorruptEntry, got, want)
	}
	e := Entry{
		LeaderEpoch:   int32(binary.BigEndian.Uint32(b[1:])),
		LogAppendTime: int64(binary.BigEndian.Uint64(b[5:])),
		Batches:       b[entryHeaderSize:],
	}
	if e.LogAppendTime < -1 {
		return Entry{}, fmt.Errorf("%w: log append time %d", ErrCorruptEntry, e.LogAppendTime)
	}
	if _, err := countEntryBatches(e.Batches); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// countEntryBatches checks that b is one or more batch headers back to
// back, each batch whole, and returns how many there are. Errors wrap
// ErrCorruptEntry.
func countEntryBatches(b []byte) (int, error) {
	n := 0
	for pos := 0; pos < len(b); n++ {
		h, err := entryBatch(b, pos, n)
		if err != nil {
			return n, err
		}
		pos += h.Size()
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: no record batch", ErrCorruptEntry)
	}
	return n, nil
}

// entryBatch parses the header of batch n, at b[pos:], and checks that the
// batch is whole and its offset delta usable. Errors wrap ErrCorruptEntry.
func entryBatch(b []byte, pos, n int) (log.BatchHeader, error) {
	h, err := log.ParseBatchHeader(b[pos:])
	switch {
	case err != nil:
		return h, fmt.Errorf("%w: batch %d at byte %d: %w", ErrCorruptEntry, n, pos, err)
	case h.Size() > len(b)-pos:
		return h, fmt.Errorf("%w: batch %d of %d bytes, %d left", ErrCorruptEntry, n, h.Size(), len(b)-pos)
	case h.LastOffsetDelta < 0:
		return h, fmt.Errorf("%w: batch %d has lastOffsetDelta %d", ErrCorruptEntry, n, h.LastOffsetDelta)
	}
	return h, nil
}
