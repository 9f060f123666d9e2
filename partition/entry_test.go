package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/sluice-io/sluice/log"
)

func TestEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		entry func(t *testing.T) Entry
	}{
		{"one batch, CreateTime", func(t *testing.T) Entry {
			return Entry{Batches: plain(3, 100).build(t), LeaderEpoch: 7, LogAppendTime: -1}
		}},
		{"several batches, LogAppendTime", func(t *testing.T) Entry {
			return Entry{Batches: concat(t, idem(1, 0, 0, 2), plain(1, 5), idem(2, 3, 9, 4)), LeaderEpoch: 1 << 30, LogAppendTime: 1_700_000_000_123}
		}},
		{"no leader epoch, time zero", func(t *testing.T) Entry {
			return Entry{Batches: plain(1, 0).build(t), LeaderEpoch: -1, LogAppendTime: 0}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.entry(t)
			b, err := want.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if len(b) != entryHeaderSize+len(want.Batches) {
				t.Fatalf("encoded %d bytes, want %d", len(b), entryHeaderSize+len(want.Batches))
			}
			got, err := DecodeEntry(b)
			if err != nil {
				t.Fatalf("DecodeEntry: %v", err)
			}
			if got.LeaderEpoch != want.LeaderEpoch || got.LogAppendTime != want.LogAppendTime || !bytes.Equal(got.Batches, want.Batches) {
				t.Fatalf("decoded %+v, want %+v", got, want)
			}
			if &got.Batches[0] != &b[entryHeaderSize] {
				t.Fatal("decoded batches do not alias the encoding")
			}
			// AppendBinary extends dst and agrees with MarshalBinary.
			prefix := []byte("prefix")
			appended, err := want.AppendBinary(bytes.Clone(prefix))
			if err != nil || !bytes.Equal(appended, append(prefix, b...)) {
				t.Fatalf("AppendBinary = %x, %v", appended, err)
			}
		})
	}
}

func TestDecodeEntryRefuses(t *testing.T) {
	valid := func(t *testing.T) []byte {
		b, err := Entry{Batches: concat(t, plain(1, 0), plain(2, 0)), LeaderEpoch: 3, LogAppendTime: -1}.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// withCRC recomputes the header CRC after a test changed the header.
	withCRC := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[entryCRCOffset:], crc32.Checksum(b[:entryCRCOffset], crc32c))
		return b
	}
	tests := []struct {
		name  string
		bytes func(t *testing.T) []byte
		want  error
	}{
		{"empty", func(t *testing.T) []byte { return nil }, ErrCorruptEntry},
		{"newer version", func(t *testing.T) []byte { b := valid(t); b[0] = 2; return withCRC(b) }, ErrEntryVersion},
		{"version zero", func(t *testing.T) []byte { b := valid(t); b[0] = 0; return withCRC(b) }, ErrEntryVersion},
		{"short header", func(t *testing.T) []byte { return valid(t)[:entryHeaderSize-1] }, ErrCorruptEntry},
		{"header only", func(t *testing.T) []byte { return valid(t)[:entryHeaderSize] }, ErrCorruptEntry},
		{"flipped epoch", func(t *testing.T) []byte { b := valid(t); b[4] ^= 1; return b }, ErrCorruptEntry},
		{"flipped time", func(t *testing.T) []byte { b := valid(t); b[12] ^= 1; return b }, ErrCorruptEntry},
		{"time below -1", func(t *testing.T) []byte {
			b := valid(t)
			binary.BigEndian.PutUint64(b[5:], uint64(1<<64-2)) // -2
			return withCRC(b)
		}, ErrCorruptEntry},
		{"cut batch", func(t *testing.T) []byte { b := valid(t); return b[:len(b)-1] }, ErrCorruptEntry},
		{"trailing bytes", func(t *testing.T) []byte { return append(valid(t), 0, 0, 0) }, ErrCorruptEntry},
		{"bad magic", func(t *testing.T) []byte { b := valid(t); b[entryHeaderSize+16] = 1; return b }, ErrCorruptEntry},
		{"negative offset delta", func(t *testing.T) []byte {
			b := valid(t)
			binary.BigEndian.PutUint32(b[entryHeaderSize+23:], 0xffffffff)
			return b
		}, ErrCorruptEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeEntry(tt.bytes(t)); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeEntry: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMarshalEntryRefuses(t *testing.T) {
	batch := plain(1, 0).build(t)
	for name, e := range map[string]Entry{
		"no batches":  {LogAppendTime: -1},
		"time -2":     {Batches: batch, LogAppendTime: -2},
		"cut batch":   {Batches: batch[:len(batch)-1], LogAppendTime: -1},
		"not a batch": {Batches: []byte("hello"), LogAppendTime: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if b, err := e.MarshalBinary(); !errors.Is(err, ErrCorruptEntry) {
				t.Fatalf("MarshalBinary = %x, %v; want ErrCorruptEntry", b, err)
			}
			dst := []byte("dst")
			if b, err := e.AppendBinary(dst); err == nil || !bytes.Equal(b, dst) {
				t.Fatalf("AppendBinary = %q, %v; want dst unchanged and an error", b, err)
			}
		})
	}
}

// FuzzDecodeEntry feeds entries whose header CRC is made right, so the
// fuzzer exercises the parser rather than the checksum, and also the bytes
// as given. Whatever decodes re-encodes to the same bytes (the format is
// canonical), aliases them, and splits into whole batches as Apply walks
// them.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []Entry{
		{Batches: plain(1, 0).build(f), LeaderEpoch: 0, LogAppendTime: -1},
		{Batches: concat(f, idem(1, 0, 0, 2), plain(3, 9)), LeaderEpoch: 5, LogAppendTime: 1_700_000_000_000},
	} {
		b, err := e.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:entryHeaderSize+log.BatchHeaderSize])
	}
	f.Add([]byte{entryVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(b []byte) {
			e, err := DecodeEntry(b)
			if err != nil {
				if !errors.Is(err, ErrCorruptEntry) && !errors.Is(err, ErrEntryVersion) {
					t.Fatalf("error %v wraps neither ErrCorruptEntry nor ErrEntryVersion", err)
				}
				return
			}
			again, err := e.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary of a decoded entry: %v", err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
			}
			if len(e.Batches) == 0 || &e.Batches[0] != &b[entryHeaderSize] || e.LogAppendTime < -1 {
				t.Fatalf("decoded %d batch bytes, time %d", len(e.Batches), e.LogAppendTime)
			}
			covered := 0
			for n := 0; covered < len(e.Batches); n++ {
				h, err := entryBatch(e.Batches, covered, n)
				if err != nil {
					t.Fatalf("decoded entry does not split: %v", err)
				}
				if h.Size() < log.BatchHeaderSize {
					t.Fatalf("batch %d of %d bytes", n, h.Size())
				}
				covered += h.Size()
			}
			if covered != len(e.Batches) {
				t.Fatalf("batches cover %d of %d bytes", covered, len(e.Batches))
			}
		}
		check(b)
		if len(b) >= entryHeaderSize {
			fixed := bytes.Clone(b)
			binary.BigEndian.PutUint32(fixed[entryCRCOffset:], crc32.Checksum(fixed[:entryCRCOffset], crc32c))
			check(fixed)
		}
	})
}
