package consumergroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record formats in __consumer_offsets (as Kafka's GroupMetadataManager):
//
//	key   = int16 version | fields               (kmsg.OffsetCommitKey, GroupMetadataKey)
//	value = int16 version | fields, or null      (null: tombstone, the key is deleted)
//
//	version 0/1 key: offset commit   {group, topic, partition}
//	                 value v3        {offset, leader epoch, metadata, commit timestamp}
//	version 2   key: group metadata  {group}
//	                 value v3        {protocol type, generation, protocol, leader,
//	                                  state timestamp, members[...]}
//
// Every write is one uncompressed magic-2 record batch (producer id -1),
// appended to partition partitionFor(group) and acknowledged only once
// committed.

const (
	offsetCommitKeyVersion    = 1
	offsetCommitValueVersion  = 3
	groupMetadataKeyVersion   = 2
	groupMetadataValueVersion = 3
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// errUnsupportedBatch is returned by the loader for a batch it cannot
// decode (compressed: Sluice never writes one).
var errUnsupportedBatch = errors.New("consumergroup: compressed batch in " + OffsetsTopic)

// record is one key/value pair to write; a nil value is a tombstone.
type record struct {
	key, value []byte
}

func offsetCommitKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetCommitKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetCommitValue(e offsetEntry) []byte {
	v := kmsg.OffsetCommitValue{
		Version:         offsetCommitValueVersion,
		Offset:          e.offset,
		LeaderEpoch:     e.leaderEpoch,
		Metadata:        e.metadata,
		CommitTimestamp: e.commitTimestamp,
	}
	return v.AppendTo(nil)
}

func groupMetadataKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupMetadataKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// encodeBatch returns records as one record batch with base offset 0 and
// timestamp now (milliseconds).
func encodeBatch(records []record, now int64) []byte {
	const headerSize = 61
	b := make([]byte, headerSize, headerSize+64*len(records))
	for i, r := range records {
		b = appendRecord(b, int32(i), r)
	}
	binary.BigEndian.PutUint64(b[0:], 0)                               // base offset
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))               // length
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)                     // partition leader epoch -1
	b[16] = 2                                                          // magic
	binary.BigEndian.PutUint16(b[21:], 0)                              // attributes: none
	binary.BigEndian.PutUint32(b[23:], uint32(len(records)-1))         // last offset delta
	binary.BigEndian.PutUint64(b[27:], uint64(now))                    // first timestamp
	binary.BigEndian.PutUint64(b[35:], uint64(now))                    // max timestamp
	binary.BigEndian.PutUint64(b[43:], 0xffffffffffffffff)             // producer id -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)                         // producer epoch -1
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)                     // base sequence -1
	binary.BigEndian.PutUint32(b[57:], uint32(len(records)))           // record count
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c)) // crc
	return b
}

// appendRecord appends one record (timestamp delta 0, no headers).
func appendRecord(dst []byte, offsetDelta int32, r record) []byte {
	var body []byte
	body = append(body, 0)              // attributes
	body = binary.AppendVarint(body, 0) // timestamp delta
	body = binary.AppendVarint(body, int64(offsetDelta))
	body = appendVarintBytes(body, r.key)
	body = appendVarintBytes(body, r.value)
	body = binary.AppendVarint(body, 0) // headers
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

func appendVarintBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// eachRecord calls fn with the offset, key and value (nil for a
// tombstone) of every record of one verified batch. Control batches are
// skipped; compressed batches are errUnsupportedBatch.
func eachRecord(batch []byte, fn func(offset int64, key, value []byte) error) error {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(batch); err != nil {
		return fmt.Errorf("decode batch: %w", err)
	}
	if rb.Attributes&0x20 != 0 { // control batch (transaction markers)
		return nil
	}
	if rb.Attributes&0x07 != 0 {
		return errUnsupportedBatch
	}
	rest := rb.Records
	for i := int32(0); i < rb.NumRecords; i++ {
		length, n := binary.Varint(rest)
		if n <= 0 || length < 0 || int64(len(rest)-n) < length {
			return fmt.Errorf("record %d of batch at offset %d: bad length", i, rb.FirstOffset)
		}
		var r kmsg.Record
		if err := r.ReadFrom(rest[:n+int(length)]); err != nil {
			return fmt.Errorf("record %d of batch at offset %d: %w", i, rb.FirstOffset, err)
		}
		rest = rest[n+int(length):]
		if err := fn(rb.FirstOffset+int64(r.OffsetDelta), r.Key, r.Value); err != nil {
			return err
		}
	}
	return nil
}
