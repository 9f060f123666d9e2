package record

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/log"
)

// FuzzRecords checks Records, Iter and CheckProduced on any bytes taken
// as a batch, and asserts round trips, not only the absence of panics:
//
//   - every decoded record re-encodes (AppendRecord) to bytes that decode
//     to the same record, and the records' raw bytes tile the section;
//   - the decoded records rebuilt into a batch with the same header
//     (AppendBatch, compressing again) decode to the same records;
//   - CheckProduced accepts only a batch whose records all decode, number
//     exactly the header's count and have offset deltas 0..n-1.
func FuzzRecords(f *testing.F) {
	for _, codec := range append([]Codec{None}, compressedCodecs...) {
		var bld Builder
		bld.Codec = codec
		for _, r := range testRecords(4) {
			bld.Add(r.timestamp, r.key, r.value, r.headers...)
		}
		b, err := bld.AppendTo(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		garbage := bytes.Clone(b)
		copy(garbage[log.BatchHeaderSize:], "garbage")
		f.Add(garbage)
	}
	f.Add([]byte{})
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, b []byte) {
		h, it, err := Records(b, limit)
		if err != nil {
			if !errors.Is(err, log.ErrCorrupt) && !errors.Is(err, log.ErrShortBatch) {
				t.Fatalf("Records error %v wraps neither sentinel", err)
			}
			return
		}
		var (
			decoded []Record
			section []byte
		)
		for it.Next() {
			r := *it.Record()
			section = append(section, r.Raw...)
			again := NewIter(AppendRecord(nil, &r))
			if !again.Next() {
				t.Fatalf("re-encoded record does not decode: %v", again.Err())
			}
			if got := *again.Record(); !sameRecord(got, r) {
				t.Fatalf("re-encoded record decodes to %+v, want %+v", got, r)
			}
			decoded = append(decoded, r)
		}
		if it.Err() != nil && !errors.Is(it.Err(), log.ErrCorrupt) {
			t.Fatalf("Iter error %v does not wrap log.ErrCorrupt", it.Err())
		}
		if it.Count() != len(decoded) {
			t.Fatalf("Count %d after %d records", it.Count(), len(decoded))
		}
		if it.Err() == nil {
			plain, err := Decompress(b[log.BatchHeaderSize:h.Size()], Codec(h.Compression()), limit)
			if err != nil || !bytes.Equal(plain, section) {
				t.Fatalf("records do not tile the section (%v)", err)
			}
			rebuilt, err := AppendBatch(nil, h, section)
			if err != nil {
				t.Fatal(err)
			}
			h2, it2, err := Records(rebuilt, limit)
			if err != nil {
				t.Fatalf("rebuilt batch: %v", err)
			}
			want := h
			want.Length, want.CRC, h2.Length, h2.CRC = 0, 0, 0, 0
			if h2 != want {
				t.Fatalf("rebuilt header %+v, want %+v", h2, want)
			}
			for i := 0; it2.Next(); i++ {
				if !sameRecord(*it2.Record(), decoded[i]) {
					t.Fatalf("rebuilt record %d = %+v, want %+v", i, *it2.Record(), decoded[i])
				}
			}
			if it2.Err() != nil || it2.Count() != len(decoded) {
				t.Fatalf("rebuilt batch: %d records, %v", it2.Count(), it2.Err())
			}
		}

		if _, err := log.VerifyProducedBatch(b); err != nil {
			return
		}
		if err := CheckProduced(b, h, limit, nil); err == nil {
			if it.Err() != nil || len(decoded) != int(h.RecordCount) {
				t.Fatalf("CheckProduced accepted %d decodable records of %d (%v)", len(decoded), h.RecordCount, it.Err())
			}
			for i, r := range decoded {
				if int(r.OffsetDelta) != i {
					t.Fatalf("CheckProduced accepted offset delta %d at record %d", r.OffsetDelta, i)
				}
			}
		} else if !errors.Is(err, log.ErrCorrupt) {
			t.Fatalf("CheckProduced error %v does not wrap log.ErrCorrupt", err)
		}
	})
}

// sameRecord compares decoded records field by field, nil and empty
// slices apart, Raw aside (a varint may be encoded in more bytes than it
// needs).
func sameRecord(a, b Record) bool {
	a.Raw, b.Raw = nil, nil
	return reflect.DeepEqual(a, b)
}
