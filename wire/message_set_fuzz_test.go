package wire

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/log"
)

// countMessages counts the messages of a message set the way a reader
// independent of convertMessageSet would: top-level messages, and for a
// compressed wrapper the messages of its decompressed value. It reports
// false when the set does not parse.
func countMessages(set []byte) (int, bool) {
	n := 0
	for len(set) > 0 {
		if len(set) < 12 {
			return 0, false
		}
		size := int(int32(binary.BigEndian.Uint32(set[8:])))
		if size < 0 || size > len(set)-12 {
			return 0, false
		}
		m, _, err := nextMessage(set)
		set = set[12+size:]
		if err != nil {
			return 0, false
		}
		codec := m.attributes & messageAttributeCodec
		if codec == 0 {
			n++
			continue
		}
		value := m.value
		if codec == codecLZ4 && m.magic == 0 {
			if fixed, ok := repairLegacyLZ4(value); ok {
				if _, err := kgo.DefaultDecompressor().Decompress(value, kgo.CodecLz4); err != nil {
					value = fixed
				}
			}
		}
		inner, err := kgo.DefaultDecompressor().Decompress(value, kgo.CompressionCodecType(codec))
		if err != nil {
			return 0, false
		}
		k, ok := countMessages(inner)
		if !ok {
			return 0, false
		}
		n += k
	}
	return n, true
}

// FuzzConvertMessageSet checks that up-conversion never panics and that a
// converted set is one valid v2 batch holding as many records as the set
// holds messages, in order.
func FuzzConvertMessageSet(f *testing.F) {
	msgs := []testMessage{{key: []byte("k"), value: []byte("v"), timestamp: 7}, {value: []byte("second")}}
	for _, magic := range []int8{0, 1} {
		for _, codec := range []int8{0, codecGzip, codecSnappy, codecLZ4} {
			f.Add(messageSet(f, magic, codec, 0, 3, msgs...), false)
		}
	}
	f.Add(messageSet(f, 1, codecGzip, messageAttributeTimeType, 3, msgs...), true)
	f.Fuzz(func(t *testing.T, set []byte, fixCRCs bool) {
		if fixCRCs {
			// Random mutations rarely keep a CRC valid: recompute the
			// top-level ones so the fuzzer reaches past them.
			set = withFixedCRCs(set)
		}
		batch, err := convertMessageSet(set, 1)
		if err != nil {
			return
		}
		h, err := log.VerifyProducedBatch(batch)
		if err != nil {
			t.Fatalf("converted batch: %v", err)
		}
		if h.Size() != len(batch) {
			t.Fatalf("batch of %d bytes, header says %d", len(batch), h.Size())
		}
		want, ok := countMessages(set)
		if !ok {
			t.Fatal("converted a set that does not parse")
		}
		if got := decodeBatches(t, batch); len(got) != want || int(h.RecordCount) != want {
			t.Fatalf("%d records (header %d), set holds %d messages", len(got), h.RecordCount, want)
		}
	})
}

// FuzzAppendMessageSet builds valid stored batches from the fuzzer's
// values and checks that down-conversion returns every record at or after
// the fetch offset, in order, with its key and value, as valid messages.
func FuzzAppendMessageSet(f *testing.F) {
	f.Add([]byte("a\x00bb\x00"), uint8(0), uint8(1), int64(0), int64(0))
	f.Add([]byte("one\x00two\x00three"), uint8(1), uint8(0), int64(100), int64(101))
	f.Add([]byte("x"), uint8(3), uint8(1), int64(5), int64(0))
	f.Add([]byte(""), uint8(2), uint8(0), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, codec, magic uint8, baseOffset, fetchOffset int64) {
		if baseOffset < 0 || baseOffset > 1<<40 {
			return
		}
		values := bytes.Split(data, []byte{0})
		stored := makeStoredBatch(t, baseOffset, int8(codec%4), 0, toStrings(values)...)
		d := downConversion{magic: int8(magic % 2), fetchOffset: fetchOffset, maxBytes: 1 << 30}
		set, err := appendMessageSet(nil, stored, d)
		if err != nil {
			t.Fatal(err)
		}
		got := decodeMessages(t, set, d.magic)
		first := max(fetchOffset-baseOffset, 0)
		if first > int64(len(values)) {
			first = int64(len(values))
		}
		if len(got) != len(values)-int(first) {
			t.Fatalf("%d messages, want %d", len(got), len(values)-int(first))
		}
		for i, m := range got {
			j := int(first) + i
			if m.offset != baseOffset+int64(j) || !bytes.Equal(m.value, values[j]) || string(m.key) != "k"+string(values[j]) {
				t.Fatalf("message %d: %+v, want offset %d value %q", i, m, baseOffset+int64(j), values[j])
			}
		}
	})
}

// withFixedCRCs returns a copy of set with the CRC of every top-level
// message that its size field delimits recomputed.
func withFixedCRCs(set []byte) []byte {
	set = bytes.Clone(set)
	for rest := set; len(rest) >= 17; {
		size := int(int32(binary.BigEndian.Uint32(rest[8:])))
		if size < 5 || size > len(rest)-12 {
			break
		}
		binary.BigEndian.PutUint32(rest[12:], crc32.ChecksumIEEE(rest[16:12+size]))
		rest = rest[12+size:]
	}
	return set
}

func toStrings(b [][]byte) []string {
	s := make([]string, len(b))
	for i := range b {
		s[i] = string(b[i])
	}
	return s
}
