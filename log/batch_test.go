package log

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"
)

func TestVerifyBatch(t *testing.T) {
	valid := simpleBatch(10, 3, 20)
	recrc := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[offsetCRC:], crc32.Checksum(b[batchCRCStart:], crc32c))
		return b
	}
	for _, tc := range []struct {
		name string
		b    func() []byte
		want error
	}{
		{"valid", func() []byte { return valid }, nil},
		{"trailing bytes", func() []byte { return append(slices.Clone(valid), 1, 2, 3) }, nil},
		{"short header", func() []byte { return valid[:BatchHeaderSize-1] }, ErrShortBatch},
		{"short body", func() []byte { return valid[:len(valid)-1] }, ErrShortBatch},
		{"bad magic", func() []byte { b := slices.Clone(valid); b[offsetMagic] = 1; return b }, ErrCorrupt},
		{"bad crc", func() []byte { b := slices.Clone(valid); b[len(b)-1] ^= 1; return b }, ErrCorrupt},
		{"length below header", func() []byte {
			b := slices.Clone(valid)
			binary.BigEndian.PutUint32(b[offsetLength:], 10)
			return b
		}, ErrCorrupt},
		{"more records than offsets", func() []byte {
			b := slices.Clone(valid)
			binary.BigEndian.PutUint32(b[offsetLastDelta:], 1)
			return recrc(b)
		}, ErrCorrupt},
		{"record count mismatch", func() []byte {
			b := slices.Clone(valid)
			binary.BigEndian.PutUint32(b[offsetRecordCount:], 2)
			return recrc(b)
		}, ErrCorrupt},
		{"base offset and epoch not covered", func() []byte {
			b := slices.Clone(valid)
			SetBaseOffset(b, 99)
			SetPartitionLeaderEpoch(b, 7)
			return b
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyBatch(tc.b())
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("VerifyBatch error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAppendBatch(t *testing.T) {
	h := BatchHeader{BaseOffset: 42, PartitionLeaderEpoch: 3, Attributes: attributeTimeType | 4, LastOffsetDelta: 9,
		BaseTimestamp: 100, MaxTimestamp: 200, ProducerID: 7, ProducerEpoch: 1, BaseSequence: 5, RecordCount: 0,
		Magic: 9, Length: 1, CRC: 1} // Magic, Length and CRC are computed, not taken
	section := []byte("an opaque compressed records section")
	b := AppendBatch([]byte("prefix"), h, section)
	if string(b[:6]) != "prefix" {
		t.Fatal("AppendBatch did not append")
	}
	b = b[6:]
	got, err := VerifyBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	want := h
	want.Magic, want.Length, want.CRC = 2, int32(BatchHeaderSize-batchLengthOverhead+len(section)), crc32.Checksum(b[batchCRCStart:], crc32c)
	if got != want || got.Size() != len(b) || string(b[BatchHeaderSize:]) != string(section) {
		t.Fatalf("header %+v, want %+v", got, want)
	}
	b[len(b)-1] ^= 1
	SetCRC(b)
	if _, err := VerifyBatch(b); err != nil {
		t.Fatalf("after SetCRC: %v", err)
	}
}
