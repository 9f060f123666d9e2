package record

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/log"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Record
	}{
		{"null key and value", Record{}},
		{"empty key and value", Record{Key: []byte{}, Value: []byte{}}},
		{"key value", Record{TimestampDelta: -5, OffsetDelta: 7, Key: []byte("k"), Value: []byte("v")}},
		{"large deltas", Record{TimestampDelta: 1 << 40, OffsetDelta: 1<<31 - 1, Value: bytes.Repeat([]byte{'x'}, 300)}},
		{"headers", Record{Key: []byte("k"), Headers: AppendHeaders(nil, []Header{{"a", []byte("1")}, {"b", nil}, {"", []byte{}}})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := AppendRecord([]byte("prefix"), &tc.r)
			if !bytes.HasPrefix(enc, []byte("prefix")) {
				t.Fatal("AppendRecord did not append")
			}
			enc = enc[len("prefix"):]
			it := NewIter(append(bytes.Clone(enc), enc...))
			for i := range 2 {
				if !it.Next() {
					t.Fatalf("record %d: %v", i, it.Err())
				}
				got := *it.Record()
				if !bytes.Equal(got.Raw, enc) {
					t.Fatalf("Raw = %x, want %x", got.Raw, enc)
				}
				want := tc.r
				if want.Headers == nil {
					want.Headers = noHeaders
				}
				got.Raw = nil
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("decoded %+v, want %+v", got, want)
				}
			}
			if it.Next() || it.Err() != nil || it.Count() != 2 {
				t.Fatalf("after the end: count %d, err %v", it.Count(), it.Err())
			}
		})
	}
}

func TestIterRejects(t *testing.T) {
	good := AppendRecord(nil, &Record{Key: []byte("k"), Value: []byte("v")})
	// withBody frames body as one record.
	withBody := func(body ...byte) []byte {
		return append([]byte{byte(len(body) << 1)}, body...)
	}
	for _, tc := range []struct {
		name    string
		section []byte
	}{
		{"zero length", []byte{0}},
		{"negative length", []byte{1}},
		{"length past the end", good[:len(good)-1]},
		{"bad varint", []byte{0xff}},
		{"key past the end", withBody(0, 0, 0, 10, 'k')},
		{"key length below -1", withBody(0, 0, 0, 3, 0, 0)},
		{"missing header count", withBody(0, 0, 0, 1, 1)},
		{"negative header count", withBody(0, 0, 0, 1, 1, 1)},
		{"null header key", withBody(0, 0, 0, 1, 1, 2, 1, 1)},
		{"header count too high", withBody(0, 0, 0, 1, 1, 4, 0, 1)},
		{"trailing bytes", withBody(0, 0, 0, 1, 1, 0, 0)},
		{"offset delta above int32", withBody(0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 1, 1, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := NewIter(append(bytes.Clone(good), tc.section...))
			if !it.Next() {
				t.Fatalf("good record: %v", it.Err())
			}
			if it.Next() {
				t.Fatalf("decoded %+v", *it.Record())
			}
			if !errors.Is(it.Err(), log.ErrCorrupt) {
				t.Fatalf("Err = %v, want log.ErrCorrupt", it.Err())
			}
			if it.Next() {
				t.Fatal("Next after an error")
			}
		})
	}
}
