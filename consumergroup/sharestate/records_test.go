package sharestate

import (
	"bytes"
	"reflect"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  Key
		s    State
	}{
		{"no batches", Key{"g", [16]byte{1, 2}, 0}, State{StateEpoch: 0, LeaderEpoch: -1, StartOffset: -1}},
		{"batches", Key{"group-é", [16]byte{15: 9}, 7}, State{StateEpoch: 3, LeaderEpoch: 9, StartOffset: 100, Batches: []Batch{
			{First: 100, Last: 100, State: Acknowledged, DeliveryCount: 1},
			{First: 105, Last: 200, State: Available, DeliveryCount: 2},
			{First: 1 << 40, Last: 1<<40 + 3, State: Archived, DeliveryCount: 5},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := decodeKey(encodeKey(tc.key))
			if err != nil || k != tc.key {
				t.Fatalf("key %+v, %v; want %+v", k, err, tc.key)
			}
			s, err := decodeValue(encodeValue(tc.s))
			if err != nil || !reflect.DeepEqual(s, tc.s) {
				t.Fatalf("value %+v, %v; want %+v", s, err, tc.s)
			}
		})
	}
}

func TestDecodeValueRefusesBrokenStates(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    State
	}{
		{"overlap", State{StateEpoch: 0, StartOffset: 0, Batches: []Batch{{First: 0, Last: 5, State: Archived}, {First: 5, Last: 6, State: Archived}}}},
		{"before start", State{StateEpoch: 0, StartOffset: 10, Batches: []Batch{{First: 0, Last: 5, State: Archived}}}},
		{"acquired", State{StateEpoch: 0, StartOffset: 0, Batches: []Batch{{First: 0, Last: 5, State: 1}}}},
		{"uninitialized with batches", State{StateEpoch: -1, StartOffset: -1, Batches: []Batch{{First: 0, Last: 5, State: Archived}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := decodeValue(encodeValue(tc.s)); err == nil {
				t.Fatalf("decoded %+v", s)
			}
		})
	}
	if _, err := decodeValue(append(encodeValue(State{StateEpoch: 0}), 0)); err == nil {
		t.Fatal("a value with a trailing byte decoded")
	}
	if _, err := decodeKey(append(encodeKey(Key{"g", [16]byte{1}, 0}), 0)); err == nil {
		t.Fatal("a key with a trailing byte decoded")
	}
}

// FuzzDecodeValue checks that the decoder never panics, returns only
// States that keep State's invariants, and that what it accepts encodes
// back to the same bytes.
func FuzzDecodeValue(f *testing.F) {
	f.Add(encodeValue(State{StateEpoch: 0, LeaderEpoch: -1, StartOffset: -1}))
	f.Add(encodeValue(State{StateEpoch: 2, LeaderEpoch: 4, StartOffset: 10, Batches: []Batch{
		{First: 10, Last: 12, State: Acknowledged, DeliveryCount: 1},
		{First: 20, Last: 29, State: Available, DeliveryCount: 3},
	}}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeValue(b)
		if err != nil {
			return
		}
		if err := s.check(); err != nil {
			t.Fatalf("decoded a broken state %+v: %v", s, err)
		}
		if again := encodeValue(s); !bytes.Equal(again, b) {
			t.Fatalf("%x decoded to %+v, which encodes to %x", b, s, again)
		}
	})
}

// FuzzDecodeKey checks the key decoder the same way.
func FuzzDecodeKey(f *testing.F) {
	f.Add(encodeKey(Key{"g", [16]byte{1}, 3}))
	f.Add([]byte{0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := decodeKey(b)
		if err != nil {
			return
		}
		if k.Partition < 0 {
			t.Fatalf("decoded a negative partition: %+v", k)
		}
		if again := encodeKey(k); !bytes.Equal(again, b) {
			t.Fatalf("%x decoded to %+v, which encodes to %x", b, k, again)
		}
	})
}
