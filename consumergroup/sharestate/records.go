package sharestate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-io/sluice/partition/record"
)

// A record of __share_group_state is a snapshot of one share-partition's
// whole State: compaction keeps the newest record of each key, and a load
// needs only that one. Kafka writes ShareSnapshot records with
// ShareUpdate deltas between them; Sluice writes a snapshot on every
// change (doc.go, "Non-obvious", says why). kmsg has no type for these
// records, so the format is Sluice's own, big-endian:
//
//	key, version 0 (a share-partition snapshot)
//	+---------+-----------+-----------+-----------+-----------+
//	| version | group len |   group   | topic id  | partition |
//	|  int16  |   int16   | UTF-8     | 16 bytes  |   int32   |
//	+---------+-----------+-----------+-----------+-----------+
//
//	value, version 0 (null: a tombstone, the state was deleted)
//	+---------+-------------+--------------+--------------+---------+
//	| version | state epoch | leader epoch | start offset | batches |
//	|  int16  |    int32    |    int32     |    int64     |  int32  |
//	+---------+-------------+--------------+--------------+---------+
//	then per batch, 19 bytes:
//	+--------------+-------------+-------+----------------+
//	| first offset | last offset | state | delivery count |
//	|    int64     |    int64    | int8  |     int16      |
//	+--------------+-------------+-------+----------------+
//
// The decoder accepts only what the encoder writes: exact lengths and a
// valid State (batches sorted, not overlapping, at or after the start
// offset, with a stored state and a delivery count of 0 or more).

// errUndecodable reports a record of __share_group_state that is not a
// share-partition record Sluice understands; a load skips it.
var errUndecodable = errors.New("sharestate: undecodable record")

const (
	keyVersion      = 0
	valueVersion    = 0
	valueHeaderSize = 2 + 4 + 4 + 8 + 4
	batchSize       = 8 + 8 + 1 + 2
	// maxGroupLen is the longest group id a key holds (int16 length).
	maxGroupLen = 1<<15 - 1
)

// encodeKey returns the record key of k.
func encodeKey(k Key) []byte {
	b := make([]byte, 0, 2+2+len(k.Group)+16+4)
	b = binary.BigEndian.AppendUint16(b, keyVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.Group)))
	b = append(b, k.Group...)
	b = append(b, k.TopicID[:]...)
	return binary.BigEndian.AppendUint32(b, uint32(k.Partition))
}

// decodeKey decodes a record key.
func decodeKey(b []byte) (Key, error) {
	if len(b) < 4 || binary.BigEndian.Uint16(b) != keyVersion {
		return Key{}, fmt.Errorf("%w: key version", errUndecodable)
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n > maxGroupLen || len(b) != 4+n+16+4 {
		return Key{}, fmt.Errorf("%w: key of %d bytes with a group of %d", errUndecodable, len(b), n)
	}
	k := Key{Group: string(b[4 : 4+n])}
	copy(k.TopicID[:], b[4+n:])
	k.Partition = int32(binary.BigEndian.Uint32(b[4+n+16:]))
	if k.Partition < 0 {
		return Key{}, fmt.Errorf("%w: partition %d", errUndecodable, k.Partition)
	}
	return k, nil
}

// encodeValue returns the record value of s.
func encodeValue(s State) []byte {
	b := make([]byte, 0, valueHeaderSize+batchSize*len(s.Batches))
	b = binary.BigEndian.AppendUint16(b, valueVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(s.StateEpoch))
	b = binary.BigEndian.AppendUint32(b, uint32(s.LeaderEpoch))
	b = binary.BigEndian.AppendUint64(b, uint64(s.StartOffset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Batches)))
	for _, x := range s.Batches {
		b = binary.BigEndian.AppendUint64(b, uint64(x.First))
		b = binary.BigEndian.AppendUint64(b, uint64(x.Last))
		b = append(b, byte(x.State))
		b = binary.BigEndian.AppendUint16(b, uint16(x.DeliveryCount))
	}
	return b
}

// decodeValue decodes a record value; it never returns a State that
// breaks State's invariants.
func decodeValue(b []byte) (State, error) {
	if len(b) < valueHeaderSize || binary.BigEndian.Uint16(b) != valueVersion {
		return State{}, fmt.Errorf("%w: value version or length %d", errUndecodable, len(b))
	}
	s := State{
		StateEpoch:  int32(binary.BigEndian.Uint32(b[2:])),
		LeaderEpoch: int32(binary.BigEndian.Uint32(b[6:])),
		StartOffset: int64(binary.BigEndian.Uint64(b[10:])),
	}
	n := binary.BigEndian.Uint32(b[18:])
	b = b[valueHeaderSize:]
	if uint64(len(b)) != uint64(n)*batchSize {
		return State{}, fmt.Errorf("%w: %d batches in %d bytes", errUndecodable, n, len(b))
	}
	if n > 0 {
		s.Batches = make([]Batch, n)
	}
	for i := range s.Batches {
		s.Batches[i] = Batch{
			First:         int64(binary.BigEndian.Uint64(b)),
			Last:          int64(binary.BigEndian.Uint64(b[8:])),
			State:         RecordState(int8(b[16])),
			DeliveryCount: int16(binary.BigEndian.Uint16(b[17:])),
		}
		b = b[batchSize:]
	}
	if err := s.check(); err != nil {
		return State{}, fmt.Errorf("%w: %w", errUndecodable, err)
	}
	return s, nil
}

// encodeRecord builds one uncompressed batch holding the record of key's
// state s, a tombstone when s is nil, stamped at now.
func encodeRecord(k Key, s *State, now time.Time) []byte {
	var value []byte
	if s != nil {
		value = encodeValue(*s)
	}
	var b record.Builder
	b.Add(now.UnixMilli(), encodeKey(k), value)
	raw, err := b.AppendTo(nil)
	if err != nil {
		// Only an empty batch fails uncompressed: a bug.
		panic(fmt.Sprintf("sharestate: encode the record of %v: %v", k, err))
	}
	return raw
}
