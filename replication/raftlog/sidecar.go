package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/hashicorp/raft"
)

// The sidecar file holds what the segment log cannot: Raft's own entries
// (no-op, configuration, barrier, and commands that are not record
// batches) and the bookkeeping that maps Raft indexes to offsets.
//
//	file   = header record*
//	header = "SLRL" | version u32 (1)
//
//	record = length u32 | crc u32 | kind u8 | body
//	         length counts kind and body; crc is CRC-32C of kind and body
//
//	kind 1 entry     index u64 | term u64 | type u8 |
//	                 dataLen u32 | data | extLen u32 | extensions
//	kind 2 mark      index u64 | offset i64
//	                 (the segment entry of this index is the batch whose
//	                 base offset is offset)
//	kind 3 truncate  index u64   entries at or after index are gone
//	kind 4 first     index u64   entries before index are gone
//	kind 5 reset     index u64   every entry is gone; the next one stored
//	                             has this index and its first segment
//	                             entry goes at the log end
//
// All integers are big-endian. A torn or corrupt record ends the file:
// Open truncates it there, since only records written before a completed
// sync can have been acknowledged.
const (
	sidecarMagic   = "SLRL"
	sidecarVersion = 1
	headerSize     = 8
	recordOverhead = 9 // length, crc, kind

	kindEntry    byte = 1
	kindMark     byte = 2
	kindTruncate byte = 3
	kindFirst    byte = 4
	kindReset    byte = 5

	// maxRecordSize bounds a record before its body is read, so a corrupt
	// length cannot make Open allocate without bound. Raft entries kept in
	// the sidecar are small (configurations, no-ops, admin commands).
	maxRecordSize = 64 << 20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord reports a sidecar record that does not decode.
var errBadRecord = errors.New("raftlog: bad sidecar record")

// record is one decoded sidecar record. index is used by every kind;
// offset by marks; entry by entries.
type record struct {
	kind   byte
	index  uint64
	offset int64
	entry  raft.Log
}

// appendHeader appends the file header to dst.
func appendHeader(dst []byte) []byte {
	dst = append(dst, sidecarMagic...)
	return binary.BigEndian.AppendUint32(dst, sidecarVersion)
}

// checkHeader reports whether b starts with a valid file header.
func checkHeader(b []byte) error {
	if len(b) < headerSize || string(b[:4]) != sidecarMagic {
		return fmt.Errorf("%w: missing file header", errBadRecord)
	}
	if v := binary.BigEndian.Uint32(b[4:8]); v != sidecarVersion {
		return fmt.Errorf("%w: unknown version %d", errBadRecord, v)
	}
	return nil
}

// appendRecord appends the encoding of r to dst.
func appendRecord(dst []byte, r *record) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, r.kind)
	dst = binary.BigEndian.AppendUint64(dst, r.index)
	switch r.kind {
	case kindEntry:
		dst = binary.BigEndian.AppendUint64(dst, r.entry.Term)
		dst = append(dst, byte(r.entry.Type))
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(r.entry.Data)))
		dst = append(dst, r.entry.Data...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(r.entry.Extensions)))
		dst = append(dst, r.entry.Extensions...)
	case kindMark:
		dst = binary.BigEndian.AppendUint64(dst, uint64(r.offset))
	}
	body := dst[start+8:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(body, crc32c))
	return dst
}

// recordSize returns the size of the record at the start of b, or an error
// when b does not hold a whole one.
func recordSize(b []byte) (int, error) {
	if len(b) < recordOverhead {
		return 0, fmt.Errorf("%w: %d bytes left, a record needs %d", errBadRecord, len(b), recordOverhead)
	}
	n := binary.BigEndian.Uint32(b)
	if n < 1 || n > maxRecordSize {
		return 0, fmt.Errorf("%w: length %d", errBadRecord, n)
	}
	if int64(n)+8 > int64(len(b)) {
		return 0, fmt.Errorf("%w: record of %d bytes, %d left", errBadRecord, n+8, len(b))
	}
	return int(n) + 8, nil
}

// decodeRecord decodes the record at the start of b and returns it with
// its size. Entry data and extensions alias b.
func decodeRecord(b []byte) (record, int, error) {
	size, err := recordSize(b)
	if err != nil {
		return record{}, 0, err
	}
	body := b[8:size]
	if got, want := crc32.Checksum(body, crc32c), binary.BigEndian.Uint32(b[4:]); got != want {
		return record{}, 0, fmt.Errorf("%w: crc %08x, want %08x", errBadRecord, got, want)
	}
	r := record{kind: body[0]}
	rest := body[1:]
	if len(rest) < 8 {
		return record{}, 0, fmt.Errorf("%w: kind %d without index", errBadRecord, r.kind)
	}
	r.index = binary.BigEndian.Uint64(rest)
	rest = rest[8:]
	switch r.kind {
	case kindEntry:
		if len(rest) < 13 {
			return record{}, 0, fmt.Errorf("%w: short entry", errBadRecord)
		}
		r.entry.Index = r.index
		r.entry.Term = binary.BigEndian.Uint64(rest)
		r.entry.Type = raft.LogType(rest[8])
		n := binary.BigEndian.Uint32(rest[9:])
		rest = rest[13:]
		if int64(n)+4 > int64(len(rest)) {
			return record{}, 0, fmt.Errorf("%w: entry data of %d bytes, %d left", errBadRecord, n, len(rest))
		}
		r.entry.Data = nilIfEmpty(rest[:n])
		rest = rest[n:]
		m := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if int64(m) != int64(len(rest)) {
			return record{}, 0, fmt.Errorf("%w: entry extensions of %d bytes, %d left", errBadRecord, m, len(rest))
		}
		r.entry.Extensions = nilIfEmpty(rest)
		rest = nil
	case kindMark:
		if len(rest) < 8 {
			return record{}, 0, fmt.Errorf("%w: short mark", errBadRecord)
		}
		off := binary.BigEndian.Uint64(rest)
		if off > math.MaxInt64 {
			return record{}, 0, fmt.Errorf("%w: mark offset %d", errBadRecord, off)
		}
		r.offset = int64(off)
		rest = rest[8:]
	case kindTruncate, kindFirst, kindReset:
	default:
		return record{}, 0, fmt.Errorf("%w: unknown kind %d", errBadRecord, r.kind)
	}
	if len(rest) != 0 {
		return record{}, 0, fmt.Errorf("%w: %d trailing bytes in kind %d", errBadRecord, len(rest), r.kind)
	}
	if r.index == 0 && r.kind != kindReset {
		return record{}, 0, fmt.Errorf("%w: index 0 in kind %d", errBadRecord, r.kind)
	}
	return r, size, nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
