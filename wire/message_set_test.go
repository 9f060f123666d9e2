package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication"
)

// testMessage is one message of a hand-built message set.
type testMessage struct {
	key, value []byte
	timestamp  int64 // magic 1 only
}

// encodeMessage encodes one message of magic with its size and CRC.
func encodeMessage(magic, attributes int8, offset, timestamp int64, key, value []byte) []byte {
	var b []byte
	if magic == 0 {
		m := kmsg.MessageV0{Offset: offset, Attributes: attributes, Key: key, Value: value}
		b = m.AppendTo(nil)
	} else {
		m := kmsg.MessageV1{Offset: offset, Magic: 1, Attributes: attributes, Timestamp: timestamp, Key: key, Value: value}
		b = m.AppendTo(nil)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
	return b
}

// messageSet encodes msgs as a message set of magic; with a codec, as one
// wrapper message (timestamp wrapperTimestamp, attributes codec|extra)
// holding them compressed.
func messageSet(t testing.TB, magic, codec, extraAttributes int8, wrapperTimestamp int64, msgs ...testMessage) []byte {
	var set []byte
	for i, m := range msgs {
		set = append(set, encodeMessage(magic, 0, int64(i), m.timestamp, m.key, m.value)...)
	}
	if codec == 0 {
		return set
	}
	c, err := kgo.DefaultCompressor(map[int8]kgo.CompressionCodec{1: kgo.GzipCompression(), 2: kgo.SnappyCompression(), 3: kgo.Lz4Compression()}[codec])
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	compressed, _ := c.Compress(&buf, set)
	return encodeMessage(magic, codec|extraAttributes, int64(len(msgs)-1), wrapperTimestamp, nil, bytes.Clone(compressed))
}

// decodedRecord is a record read back from a v2 batch.
type decodedRecord struct {
	offset, timestamp int64
	key, value        []byte
}

// decodeBatches verifies and decodes every v2 batch in b.
func decodeBatches(t testing.TB, b []byte) []decodedRecord {
	t.Helper()
	var out []decodedRecord
	for len(b) > 0 {
		h, err := log.VerifyBatch(b)
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
		_, it, err := record.Records(b, record.MaxDecompressedBytes)
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			r := it.Record()
			out = append(out, decodedRecord{offset: h.BaseOffset + int64(r.OffsetDelta), timestamp: h.BaseTimestamp + r.TimestampDelta, key: r.Key, value: r.Value})
		}
		if it.Err() != nil || it.Count() != int(h.RecordCount) {
			t.Fatalf("%d records of %d: %v", it.Count(), h.RecordCount, it.Err())
		}
		b = b[h.Size():]
	}
	return out
}

// decodeMessages decodes a message set of magic, checking every CRC.
func decodeMessages(t testing.TB, set []byte, magic int8) []decodedRecord {
	t.Helper()
	var out []decodedRecord
	for len(set) > 0 {
		m, rest, err := nextMessage(set)
		if err != nil {
			t.Fatalf("message: %v", err)
		}
		if m.magic != magic || m.attributes&messageAttributeCodec != 0 {
			t.Fatalf("message magic %d attributes %d, want magic %d uncompressed", m.magic, m.attributes, magic)
		}
		out = append(out, decodedRecord{offset: int64(binary.BigEndian.Uint64(set)), timestamp: m.timestampMillis, key: m.key, value: m.value})
		set = rest
	}
	return out
}

func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) }

func TestConvertMessageSet(t *testing.T) {
	const now = 1_700_000_000_000
	msgs := []testMessage{
		{key: []byte("k0"), value: []byte("v0"), timestamp: 1000},
		{key: nil, value: []byte("v1"), timestamp: 1001},
		{key: []byte{}, value: nil, timestamp: 999},
	}
	for _, tc := range []struct {
		name           string
		set            []byte
		codec          int8
		wantTimestamps []int64
	}{
		{"magic 0", messageSet(t, 0, 0, 0, 0, msgs...), 0, []int64{now, now, now}},
		{"magic 1", messageSet(t, 1, 0, 0, 0, msgs...), 0, []int64{1000, 1001, 999}},
		{"magic 0 gzip", messageSet(t, 0, 1, 0, 0, msgs...), 1, []int64{now, now, now}},
		{"magic 1 gzip", messageSet(t, 1, 1, 0, 5, msgs...), 1, []int64{1000, 1001, 999}},
		{"magic 0 snappy", messageSet(t, 0, 2, 0, 0, msgs...), 2, []int64{now, now, now}},
		{"magic 1 lz4", messageSet(t, 1, 3, 0, 0, msgs...), 3, []int64{1000, 1001, 999}},
		{"magic 1 gzip LogAppendTime wrapper", messageSet(t, 1, 1, messageAttributeTimeType, 4242, msgs...), 1, []int64{4242, 4242, 4242}},
		{"magic 0 lz4 legacy header checksum", legacyLZ4(t, messageSet(t, 0, 3, 0, 0, msgs...)), 3, []int64{now, now, now}},
		{"two wrappers and a plain message", bytes.Join([][]byte{messageSet(t, 1, 1, 0, 0, msgs[0]), messageSet(t, 1, 2, 0, 0, msgs[1]), messageSet(t, 1, 0, 0, 0, msgs[2])}, nil), 1, []int64{1000, 1001, 999}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch, err := convertMessageSet(tc.set, now)
			if err != nil {
				t.Fatal(err)
			}
			h, err := log.VerifyProducedBatch(batch)
			if err != nil {
				t.Fatal(err)
			}
			if h.Size() != len(batch) || h.Compression() != tc.codec || h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1 || h.LogAppendTime() {
				t.Fatalf("header %+v (%d bytes)", h, len(batch))
			}
			got := decodeBatches(t, batch)
			if len(got) != len(msgs) {
				t.Fatalf("%d records, want %d", len(got), len(msgs))
			}
			var maxTimestamp int64
			for i, r := range got {
				if r.offset != int64(i) || !sameBytes(r.key, msgs[i].key) || !sameBytes(r.value, msgs[i].value) || r.timestamp != tc.wantTimestamps[i] {
					t.Errorf("record %d: %+v, want key %q value %q timestamp %d", i, r, msgs[i].key, msgs[i].value, tc.wantTimestamps[i])
				}
				maxTimestamp = max(maxTimestamp, r.timestamp)
			}
			if h.MaxTimestamp != maxTimestamp {
				t.Errorf("max timestamp %d, want %d", h.MaxTimestamp, maxTimestamp)
			}
		})
	}
}

// legacyLZ4 rewrites the lz4 frame header checksum of the single magic 0
// wrapper in set the way Kafka 0.8-0.9 computed it (over the frame magic
// too), fixing the message CRC.
func legacyLZ4(t testing.TB, set []byte) []byte {
	set = bytes.Clone(set)
	frame := set[12+4+1+1+4+4:] // offset, size, crc, magic, attributes, null key, value length
	if frame[4]&(lz4FlagContentSize|lz4FlagDictionaryID) != 0 {
		t.Fatal("test assumes a bare lz4 frame descriptor")
	}
	if frame[6] != byte(xxh32(frame[4:6])>>8) {
		t.Fatal("xxh32 disagrees with the lz4 writer's header checksum")
	}
	frame[6] = byte(xxh32(frame[0:6]) >> 8)
	if _, err := kgo.DefaultDecompressor().Decompress(frame, kgo.CodecLz4); err == nil {
		t.Fatal("lz4 frame with the legacy checksum decompresses as is; the test checks nothing")
	}
	binary.BigEndian.PutUint32(set[12:], crc32.ChecksumIEEE(set[16:]))
	return set
}

func TestConvertMessageSetRejects(t *testing.T) {
	good := messageSet(t, 1, 0, 0, 0, testMessage{value: []byte("v")})
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	nested := encodeMessage(1, codecGzip, 0, 0, nil, nil)
	{
		inner := messageSet(t, 1, 1, 0, 0, testMessage{value: []byte("v")})
		c, _ := kgo.DefaultCompressor(kgo.GzipCompression())
		var buf bytes.Buffer
		z, _ := c.Compress(&buf, inner)
		nested = encodeMessage(1, codecGzip, 0, 0, nil, bytes.Clone(z))
	}
	mixedMagic := func() []byte {
		c, _ := kgo.DefaultCompressor(kgo.GzipCompression())
		var buf bytes.Buffer
		z, _ := c.Compress(&buf, messageSet(t, 0, 0, 0, 0, testMessage{value: []byte("v")}))
		return encodeMessage(1, codecGzip, 0, 0, nil, bytes.Clone(z))
	}()
	badSize := bytes.Clone(good)
	binary.BigEndian.PutUint32(badSize[8:], 1000)
	badKeyLength := bytes.Clone(good)
	binary.BigEndian.PutUint32(badKeyLength[26:], 2) // null key (-1) becomes 2 bytes: the value length runs past the end
	binary.BigEndian.PutUint32(badKeyLength[12:], crc32.ChecksumIEEE(badKeyLength[16:]))
	for _, tc := range []struct {
		name string
		set  []byte
		want *kerr.Error
	}{
		{"empty", nil, kerr.CorruptMessage},
		{"bad crc", badCRC, kerr.CorruptMessage},
		{"truncated", good[:len(good)-1], kerr.CorruptMessage},
		{"trailing garbage", append(bytes.Clone(good), 1, 2, 3), kerr.CorruptMessage},
		{"size past the end", badSize, kerr.CorruptMessage},
		{"key and value lengths disagree with size", badKeyLength, kerr.CorruptMessage},
		{"magic 2 batch", oneRecordBatch([]byte("v")), kerr.CorruptMessage},
		{"nested compression", nested, kerr.CorruptMessage},
		{"inner magic differs from wrapper", mixedMagic, kerr.CorruptMessage},
		{"null wrapper value", encodeMessage(1, codecGzip, 0, 0, nil, nil), kerr.CorruptMessage},
		{"wrapper that does not decompress", encodeMessage(0, codecGzip, 0, 0, nil, []byte("not gzip")), kerr.CorruptMessage},
		{"wrapper holding nothing", func() []byte {
			c, _ := kgo.DefaultCompressor(kgo.GzipCompression())
			var buf bytes.Buffer
			z, _ := c.Compress(&buf, []byte{})
			return encodeMessage(1, codecGzip, 0, 0, nil, bytes.Clone(z))
		}(), kerr.CorruptMessage},
		{"zstd", encodeMessage(1, codecZstd, 0, 0, nil, []byte("x")), kerr.UnsupportedCompressionType},
		{"unknown codec", encodeMessage(1, 5, 0, 0, nil, []byte("x")), kerr.CorruptMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := convertMessageSet(tc.set, 0); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// Batch attribute bits makeStoredBatch sets.
const (
	batchAttributeTimeType = 0x08
	batchAttributeControl  = 0x20
)

// makeStoredBatch builds a v2 batch at baseOffset holding values, with
// timestamps base+i, compressed with codec, with attribute bits extra.
func makeStoredBatch(t testing.TB, baseOffset int64, codec int8, extra int16, values ...string) []byte {
	t.Helper()
	records := make([]upRecord, len(values))
	for i, v := range values {
		records[i] = upRecord{timestamp: 5000 + int64(i), key: []byte("k" + v), value: []byte(v)}
	}
	b, err := buildBatch(records, codec)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint64(b, uint64(baseOffset))
	if extra != 0 {
		binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|uint16(extra))
		binary.BigEndian.PutUint64(b[35:], 9999) // max timestamp, the LogAppendTime
		log.SetCRC(b)
	}
	return b
}

func TestAppendMessageSet(t *testing.T) {
	stored := append(append(append(
		makeStoredBatch(t, 10, 0, 0, "a", "b", "c"),
		makeStoredBatch(t, 13, codecGzip, 0, "d", "e")...),
		makeStoredBatch(t, 15, 0, batchAttributeControl, "marker")...),
		makeStoredBatch(t, 16, codecLZ4, batchAttributeTimeType, "f")...)
	all := int(^uint(0) >> 1)
	oneMessage := len(encodeMessage(1, 0, 0, 0, []byte("ka"), []byte("a")))
	for _, tc := range []struct {
		name           string
		d              downConversion
		batches        []byte
		wantOffsets    []int64
		wantTimestamps []int64 // magic 1
		wantAttributes int8    // of the last message
	}{
		{"magic 0 all", downConversion{magic: 0, fetchOffset: 10, maxBytes: all}, stored, []int64{10, 11, 12, 13, 14, 16}, nil, 0},
		{"magic 1 all", downConversion{magic: 1, fetchOffset: 10, maxBytes: all}, stored, []int64{10, 11, 12, 13, 14, 16}, []int64{5000, 5001, 5002, 5000, 5001, 9999}, messageAttributeTimeType},
		{"fetch offset mid batch", downConversion{magic: 1, fetchOffset: 14, maxBytes: all}, stored, []int64{14, 16}, []int64{5001, 9999}, messageAttributeTimeType},
		{"two messages fit", downConversion{magic: 1, fetchOffset: 10, maxBytes: 2*oneMessage + 1}, stored, []int64{10, 11}, []int64{5000, 5001}, 0},
		{"min one", downConversion{magic: 1, fetchOffset: 10, maxBytes: 1, minOne: true}, stored, []int64{10}, []int64{5000}, 0},
		{"nothing fits", downConversion{magic: 1, fetchOffset: 10, maxBytes: 1}, stored, nil, nil, 0},
		{"partial trailing batch ignored", downConversion{magic: 0, fetchOffset: 10, maxBytes: all}, stored[:len(stored)-3], []int64{10, 11, 12, 13, 14}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := appendMessageSet(nil, tc.batches, tc.d)
			if err != nil {
				t.Fatal(err)
			}
			if len(set) > tc.d.maxBytes && len(tc.wantOffsets) > 1 {
				t.Fatalf("%d bytes above max %d", len(set), tc.d.maxBytes)
			}
			got := decodeMessages(t, set, tc.d.magic)
			if len(got) != len(tc.wantOffsets) {
				t.Fatalf("%d messages %+v, want offsets %v", len(got), got, tc.wantOffsets)
			}
			values := map[int64]string{10: "a", 11: "b", 12: "c", 13: "d", 14: "e", 16: "f"}
			for i, m := range got {
				v := values[m.offset]
				if m.offset != tc.wantOffsets[i] || string(m.value) != v || string(m.key) != "k"+v {
					t.Errorf("message %d: %+v, want offset %d", i, m, tc.wantOffsets[i])
				}
				if tc.wantTimestamps != nil && m.timestamp != tc.wantTimestamps[i] {
					t.Errorf("message %d timestamp %d, want %d", i, m.timestamp, tc.wantTimestamps[i])
				}
			}
			if len(got) > 0 && tc.d.magic == 1 {
				last, _, _ := nextMessage(set[len(set)-(len(encodeMessage(1, 0, 0, 0, got[len(got)-1].key, got[len(got)-1].value))):])
				if last.attributes != tc.wantAttributes {
					t.Errorf("last message attributes %d, want %d", last.attributes, tc.wantAttributes)
				}
			}
		})
	}
}

func TestAppendMessageSetRejectsGarbage(t *testing.T) {
	b := makeStoredBatch(t, 0, 0, 0, "a")
	b[16] = 1 // magic
	if _, err := appendMessageSet(nil, b, downConversion{maxBytes: 1 << 20}); !errors.Is(err, errBadStoredBatch) {
		t.Fatalf("error %v, want errBadStoredBatch", err)
	}
}

// TestOldVersionsOverTCP produces message sets with Produce v0-2 and v2
// batches with v9, and reads everything back with Fetch v0, v2, v3 and v12.
func TestOldVersionsOverTCP(t *testing.T) {
	addr, cluster := newTestServer(t)
	if _, err := cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "old", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	before := time.Now().UnixMilli()

	produce := func(version int16, records []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(version)
		req.Acks, req.TimeoutMillis = -1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "old"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = records
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return c.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	type want struct {
		offset     int64
		key, value string
		timestamp  int64 // 0: broker time (magic 0)
	}
	var wants []want
	for _, step := range []struct {
		version int16
		magic   int8
		codec   int8
	}{
		{0, 0, 0}, {1, 0, codecGzip}, {2, 1, 0}, {2, 1, codecGzip},
	} {
		var msgs []testMessage
		for i := range 3 {
			n := len(wants)
			msgs = append(msgs, testMessage{key: []byte{'k', byte('a' + n)}, value: []byte{'v', byte('a' + n)}, timestamp: int64(1000 + n)})
			w := want{offset: int64(n), key: string(msgs[i].key), value: string(msgs[i].value)}
			if step.magic == 1 {
				w.timestamp = msgs[i].timestamp
			}
			wants = append(wants, w)
		}
		r := produce(step.version, messageSet(t, step.magic, step.codec, 0, 0, msgs...))
		if r.ErrorCode != 0 || r.BaseOffset != int64(len(wants)-3) {
			t.Fatalf("produce v%d magic %d codec %d: error %d base offset %d", step.version, step.magic, step.codec, r.ErrorCode, r.BaseOffset)
		}
	}
	// A bad CRC is refused and appends nothing.
	bad := messageSet(t, 0, 0, 0, 0, testMessage{value: []byte("x")})
	bad[len(bad)-1] ^= 1
	if r := produce(0, bad); r.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("bad crc: error %d", r.ErrorCode)
	}
	// A modern producer adds one record.
	modern := makeStoredBatch(t, 0, codecGzip, 0, "modern")
	if r := produce(9, modern); r.ErrorCode != 0 || r.BaseOffset != int64(len(wants)) {
		t.Fatalf("produce v9: error %d base offset %d", r.ErrorCode, r.BaseOffset)
	}
	wants = append(wants, want{offset: int64(len(wants)), key: "kmodern", value: "modern", timestamp: 5000})
	after := time.Now().UnixMilli()

	fetch := func(version int16, offset int64) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := fetchRequest("old", offset, 0)
		req.SetVersion(version)
		resp := c.roundTrip(req).(*kmsg.FetchResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.HighWatermark != int64(len(wants)) {
			t.Fatalf("fetch v%d: error %d high watermark %d", version, p.ErrorCode, p.HighWatermark)
		}
		return p
	}
	check := func(version int16, got []decodedRecord, from int, withTimestamps bool) {
		t.Helper()
		if len(got) != len(wants)-from {
			t.Fatalf("fetch v%d from %d: %d records, want %d", version, from, len(got), len(wants)-from)
		}
		for i, g := range got {
			w := wants[from+i]
			if g.offset != w.offset || string(g.key) != w.key || string(g.value) != w.value {
				t.Errorf("fetch v%d record %d: offset %d %q=%q, want %+v", version, i, g.offset, g.key, g.value, w)
			}
			if !withTimestamps {
				continue
			}
			if w.timestamp == 0 && (g.timestamp < before || g.timestamp > after) || w.timestamp != 0 && g.timestamp != w.timestamp {
				t.Errorf("fetch v%d record %d: timestamp %d, want %d (0: in [%d, %d])", version, i, g.timestamp, w.timestamp, before, after)
			}
		}
	}
	for _, from := range []int{0, 4} {
		check(0, decodeMessages(t, fetch(0, int64(from)).RecordBatches, 0), from, false)
		check(2, decodeMessages(t, fetch(2, int64(from)).RecordBatches, 1), from, true)
		check(3, decodeMessages(t, fetch(3, int64(from)).RecordBatches, 1), from, true)
		got := decodeBatches(t, fetch(12, int64(from)).RecordBatches)
		for len(got) > 0 && got[0].offset < int64(from) {
			got = got[1:] // v2 batches start at the batch holding the fetch offset
		}
		check(12, got, from, true)
	}

	// Fetch v3's request MaxBytes limits the converted bytes, but the
	// first message always comes.
	req := fetchRequest("old", 0, 0)
	req.SetVersion(3)
	req.MaxBytes = 1
	p := c.roundTrip(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if got := decodeMessages(t, p.RecordBatches, 1); len(got) != 1 || got[0].offset != 0 {
		t.Fatalf("fetch v3 max bytes 1: %+v, want one message at offset 0", got)
	}
}
