package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
)

// Message sets: message format v0 and v1 (magic 0 and 1), what clients
// before Kafka 0.11 produce (Produce v0-2) and consume (Fetch v0-3). The
// log stores only magic-2 record batches, so wire converts at the edge:
// convertMessageSet turns a produced message set into one v2 batch, and
// appendMessageSet turns stored v2 batches into a message set. All
// integers are big-endian; a message set is messages back to back, with no
// count.
//
//	offset  size  field
//	     0     8  offset           (producer: ignored; inner v1: relative)
//	     8     4  messageSize      (bytes after this field)
//	    12     4  crc              (CRC-32 IEEE of bytes 16..end)
//	    16     1  magic            (0 or 1)
//	    17     1  attributes       (bits 0-2 codec: 1 gzip, 2 snappy, 3 lz4;
//	                                bit 3 LogAppendTime, magic 1 only)
//	    18     8  timestamp        (magic 1 only)
//	 18/26     4  key length       (-1: null key)
//	     …     …  key
//	     …     4  value length     (-1: null value)
//	     …     …  value
//
// A compressed message is a wrapper: its value is a whole inner message set
// compressed with its codec, and its key is null. Inner messages are never
// compressed themselves and carry the wrapper's magic.

// Message set layout constants.
const (
	messageLogOverhead = 12 // offset and messageSize
	messageCRCStart    = 16 // first byte the CRC covers: magic
	// messageMinSizeV0 is the smallest messageSize of magic 0: crc, magic,
	// attributes, key length, value length.
	messageMinSizeV0 = 4 + 1 + 1 + 4 + 4
	// messageMinSizeV1 adds the timestamp.
	messageMinSizeV1 = messageMinSizeV0 + 8

	messageAttributeCodec       = 0x07
	messageAttributeTimeType    = 0x08
	lz4FrameMagic               = 0x184D2204
	lz4FlagContentSize          = 0x08
	lz4FlagDictionaryID         = 0x01
	lz4FrameDescriptorStart     = 4 // after the frame magic
	lz4FrameDescriptorFlagBytes = 2 // FLG and BD
)

// The codec ids of a message's attributes are those of v2 batches
// (package record); magic 0 and 1 cannot carry zstd.
const (
	codecGzip   = int8(record.Gzip)
	codecSnappy = int8(record.Snappy)
	codecLZ4    = int8(record.LZ4)
	codecZstd   = int8(record.Zstd)
)

// upRecord is one message flattened out of a produced message set.
type upRecord struct {
	timestamp  int64
	key, value []byte
}

// convertMessageSet converts the produced message set in set (magic 0 and
// 1 messages, possibly compressed wrappers) into one uncompressed or
// compressed magic-2 record batch, which it returns in a new slice. now is
// the broker time in milliseconds, the timestamp of magic 0 messages.
//
// The batch has base offset 0, producer id and epoch -1, base sequence -1,
// offset deltas 0..n-1 and CreateTime timestamps: a magic 1 message's own,
// or its wrapper's when the wrapper says LogAppendTime (as Kafka reads
// such wrappers). It is compressed with the codec of the first compressed
// wrapper, if any. Producer offsets are ignored; the log assigns them.
//
// Errors wrap kerr.CorruptMessage (bad size, CRC, magic, nesting, or a
// wrapper that does not decompress) or kerr.UnsupportedCompressionType
// (zstd, which message format v0/v1 cannot carry).
func convertMessageSet(set []byte, now int64) ([]byte, error) {
	var (
		records []upRecord
		codec   int8
	)
	for n := 0; len(set) > 0; n++ {
		msg, rest, err := nextMessage(set)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", n, err)
		}
		set = rest
		c := msg.attributes & messageAttributeCodec
		if c == 0 {
			records = append(records, upRecord{timestamp: msg.timestamp(now), key: msg.key, value: msg.value})
			continue
		}
		if codec == 0 {
			codec = c
		}
		inner, err := decompressWrapper(msg)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", n, err)
		}
		if len(inner) == 0 {
			return nil, fmt.Errorf("message %d: compressed message holds no messages: %w", n, kerr.CorruptMessage)
		}
		for i := 0; len(inner) > 0; i++ {
			m, rest, err := nextMessage(inner)
			if err != nil {
				return nil, fmt.Errorf("message %d, inner message %d: %w", n, i, err)
			}
			inner = rest
			switch {
			case m.attributes&messageAttributeCodec != 0:
				return nil, fmt.Errorf("message %d, inner message %d: nested compression: %w", n, i, kerr.CorruptMessage)
			case m.magic != msg.magic:
				return nil, fmt.Errorf("message %d, inner message %d: magic %d in a magic %d wrapper: %w", n, i, m.magic, msg.magic, kerr.CorruptMessage)
			}
			timestamp := m.timestamp(now)
			if msg.magic == 1 && msg.attributes&messageAttributeTimeType != 0 {
				timestamp = msg.timestampMillis
			}
			records = append(records, upRecord{timestamp: timestamp, key: m.key, value: m.value})
		}
	}
	if len(records) == 0 {
		return nil, fmt.Errorf("empty message set: %w", kerr.CorruptMessage)
	}
	if len(records) > math.MaxInt32 {
		return nil, fmt.Errorf("%d messages in one set: %w", len(records), kerr.CorruptMessage)
	}
	return buildBatch(records, codec)
}

// legacyMessage is one decoded message of either magic.
type legacyMessage struct {
	magic, attributes int8
	timestampMillis   int64 // magic 1 only
	key, value        []byte
}

// timestamp returns the message's timestamp: its own for magic 1, now for
// magic 0, which has none.
func (m legacyMessage) timestamp(now int64) int64 {
	if m.magic == 0 {
		return now
	}
	return m.timestampMillis
}

// nextMessage decodes the message at the start of set, checking its size
// and CRC, and returns it and the bytes after it. Key and value alias set.
func nextMessage(set []byte) (legacyMessage, []byte, error) {
	if len(set) < messageLogOverhead+messageMinSizeV0 {
		return legacyMessage{}, nil, fmt.Errorf("%d bytes, shorter than a message: %w", len(set), kerr.CorruptMessage)
	}
	size := int64(int32(binary.BigEndian.Uint32(set[8:])))
	if size < messageMinSizeV0 || size > int64(len(set)-messageLogOverhead) {
		return legacyMessage{}, nil, fmt.Errorf("message size %d with %d bytes left: %w", size, len(set)-messageLogOverhead, kerr.CorruptMessage)
	}
	raw, rest := set[:messageLogOverhead+int(size)], set[messageLogOverhead+int(size):]
	if got, want := crc32.ChecksumIEEE(raw[messageCRCStart:]), binary.BigEndian.Uint32(raw[12:]); got != want {
		return legacyMessage{}, nil, fmt.Errorf("crc %08x, message says %08x: %w", got, want, kerr.CorruptMessage)
	}
	var (
		m        legacyMessage
		err      error
		encoded  int
		magic    = int8(raw[messageCRCStart])
		keyValue = func(key, value []byte) int { return max(len(key), 0) + max(len(value), 0) }
	)
	switch magic {
	case 0:
		var v kmsg.MessageV0
		err = v.UnsafeReadFrom(raw)
		m = legacyMessage{magic: 0, attributes: v.Attributes, key: v.Key, value: v.Value}
		encoded = messageLogOverhead + messageMinSizeV0 + keyValue(v.Key, v.Value)
	case 1:
		if size < messageMinSizeV1 {
			return legacyMessage{}, nil, fmt.Errorf("magic 1 message size %d: %w", size, kerr.CorruptMessage)
		}
		var v kmsg.MessageV1
		err = v.UnsafeReadFrom(raw)
		m = legacyMessage{magic: 1, attributes: v.Attributes, timestampMillis: v.Timestamp, key: v.Key, value: v.Value}
		encoded = messageLogOverhead + messageMinSizeV1 + keyValue(v.Key, v.Value)
	default:
		return legacyMessage{}, nil, fmt.Errorf("magic %d in a message set: %w", magic, kerr.CorruptMessage)
	}
	if err != nil || encoded != len(raw) {
		// Key and value lengths must account for the message exactly.
		return legacyMessage{}, nil, fmt.Errorf("key and value lengths disagree with message size %d: %w", size, kerr.CorruptMessage)
	}
	return m, rest, nil
}

// decompressWrapper returns the inner message set of a compressed wrapper.
func decompressWrapper(m legacyMessage) ([]byte, error) {
	codec := m.attributes & messageAttributeCodec
	switch {
	case codec == codecZstd:
		return nil, fmt.Errorf("zstd in message format v%d: %w", m.magic, kerr.UnsupportedCompressionType)
	case codec > codecZstd:
		return nil, fmt.Errorf("unknown compression codec %d: %w", codec, kerr.CorruptMessage)
	case m.value == nil:
		return nil, fmt.Errorf("compressed message with a null value: %w", kerr.CorruptMessage)
	}
	inner, err := record.Decompress(m.value, record.Codec(codec), partition.MaxDecompressedBytes)
	if err != nil && codec == codecLZ4 && m.magic == 0 {
		// Kafka 0.8-0.9 computed the lz4 frame header checksum over the
		// frame magic too; clients of that era copy the bug. Repair it
		// and try again.
		if fixed, ok := repairLegacyLZ4(m.value); ok {
			inner, err = record.Decompress(fixed, record.LZ4, partition.MaxDecompressedBytes)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("decompress codec %d: %w: %w", codec, kerr.CorruptMessage, err)
	}
	return inner, nil
}

// repairLegacyLZ4 returns a copy of the lz4 frame in b with its frame
// descriptor checksum recomputed as the lz4 spec says (the second byte of
// XXH32 of the descriptor, frame magic excluded), and whether b looked like
// an lz4 frame at all.
func repairLegacyLZ4(b []byte) ([]byte, bool) {
	if len(b) < lz4FrameDescriptorStart+lz4FrameDescriptorFlagBytes+1 || binary.LittleEndian.Uint32(b) != lz4FrameMagic {
		return nil, false
	}
	end := lz4FrameDescriptorStart + lz4FrameDescriptorFlagBytes
	flags := b[lz4FrameDescriptorStart]
	if flags&lz4FlagContentSize != 0 {
		end += 8
	}
	if flags&lz4FlagDictionaryID != 0 {
		end += 4
	}
	if len(b) <= end {
		return nil, false
	}
	fixed := bytes.Clone(b)
	fixed[end] = byte(xxh32(fixed[lz4FrameDescriptorStart:end]) >> 8)
	return fixed, true
}

// xxh32 is XXH32 with seed 0 for inputs shorter than 16 bytes (an lz4
// frame descriptor is at most 14), the checksum lz4 frame headers use.
func xxh32(b []byte) uint32 {
	const (
		prime1 uint32 = 2654435761
		prime2 uint32 = 2246822519
		prime3 uint32 = 3266489917
		prime4 uint32 = 668265263
		prime5 uint32 = 374761393
	)
	h := prime5 + uint32(len(b))
	for ; len(b) >= 4; b = b[4:] {
		h += binary.LittleEndian.Uint32(b) * prime3
		h = bits.RotateLeft32(h, 17) * prime4
	}
	for _, c := range b {
		h += uint32(c) * prime5
		h = bits.RotateLeft32(h, 11) * prime1
	}
	h ^= h >> 15
	h *= prime2
	h ^= h >> 13
	h *= prime3
	h ^= h >> 16
	return h
}

// buildBatch encodes records as one v2 batch compressed with codec (0:
// none), offset deltas 0..n-1, no producer.
func buildBatch(records []upRecord, codec int8) ([]byte, error) {
	b := record.Builder{Codec: record.Codec(codec)}
	for _, r := range records {
		b.Add(r.timestamp, r.key, r.value)
	}
	batch, err := b.AppendTo(nil)
	if err != nil {
		return nil, fmt.Errorf("encode %d records with codec %d: %w: %v", len(records), codec, errCompress, err)
	}
	return batch, nil
}

// errCompress reports a codec failing to compress; it is a server fault.
var errCompress = errors.New("wire: compression failed")

// errBadStoredBatch reports stored bytes that do not decode as v2 batches
// during down-conversion; it is a server fault.
var errBadStoredBatch = errors.New("wire: stored record batch does not decode")

// downConversion says how much of a partition's data appendMessageSet
// converts.
type downConversion struct {
	// magic is the message format to produce: 0 (Fetch v0-1) or 1 (v2-3).
	magic int8
	// fetchOffset is the first offset wanted; earlier records of the
	// first batch are skipped.
	fetchOffset int64
	// maxBytes bounds the converted size; conversion stops before the
	// message that would exceed it.
	maxBytes int
	// minOne returns the first message even when it alone exceeds
	// maxBytes (KIP-74), so a consumer always progresses.
	minOne bool
}

// appendMessageSet appends to dst the records of the stored v2 batches in
// batches converted to uncompressed messages of d.magic, each with its
// absolute offset, and returns the extended slice. Compressed batches are
// decompressed and not re-compressed. Headers are dropped (message sets
// have none) and control batches skipped. A magic 1 message carries the
// record's timestamp, or the batch's max timestamp with the LogAppendTime
// attribute when the batch says LogAppendTime.
//
// It stops before the first message that would take the converted bytes
// past d.maxBytes, unless it is the first and d.minOne is set, and it
// never splits a message. A trailing partial batch in batches is ignored.
// Bytes that do not decode wrap errBadStoredBatch.
func appendMessageSet(dst, batches []byte, d downConversion) ([]byte, error) {
	start := len(dst)
	var message []byte
	for len(batches) > 0 {
		h, err := log.ParseBatchHeader(batches)
		if errors.Is(err, log.ErrShortBatch) || err == nil && h.Size() > len(batches) {
			break // a partial batch at the end of a read
		}
		if err != nil {
			return dst, fmt.Errorf("batch at offset %d: %w: %w", h.BaseOffset, errBadStoredBatch, err)
		}
		batch := batches[:h.Size()]
		batches = batches[h.Size():]
		if h.Control() {
			continue
		}
		_, it, err := record.Records(batch, partition.MaxDecompressedBytes)
		if err != nil {
			return dst, fmt.Errorf("batch at offset %d: %w: %w", h.BaseOffset, errBadStoredBatch, err)
		}
		for it.Next() {
			r := it.Record()
			offset := h.BaseOffset + int64(r.OffsetDelta)
			if offset < d.fetchOffset {
				continue
			}
			switch d.magic {
			case 0:
				m := kmsg.MessageV0{Offset: offset, Key: r.Key, Value: r.Value}
				message = m.AppendTo(message[:0])
			default:
				m := kmsg.MessageV1{Offset: offset, Magic: 1, Timestamp: h.BaseTimestamp + r.TimestampDelta, Key: r.Key, Value: r.Value}
				if h.LogAppendTime() {
					m.Attributes, m.Timestamp = messageAttributeTimeType, h.MaxTimestamp
				}
				message = m.AppendTo(message[:0])
			}
			binary.BigEndian.PutUint32(message[8:], uint32(len(message)-messageLogOverhead))
			binary.BigEndian.PutUint32(message[12:], crc32.ChecksumIEEE(message[messageCRCStart:]))
			if converted := len(dst) - start; converted+len(message) > d.maxBytes && !(converted == 0 && d.minOne) {
				return dst, nil
			}
			dst = append(dst, message...)
		}
		if err := it.Err(); err != nil {
			return dst, fmt.Errorf("batch at offset %d: %w: %w", h.BaseOffset, errBadStoredBatch, err)
		}
	}
	return dst, nil
}
