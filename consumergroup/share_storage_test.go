package consumergroup

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// FuzzShareGroupValue decodes arbitrary share group record values: never
// a panic, and whatever decodes encodes back to the same bytes.
func FuzzShareGroupValue(f *testing.F) {
	g := newShareGroup("g", time.UnixMilli(1700000000000))
	f.Add(shareGroupValue(g))
	g.epoch = 7
	g.topics[[16]byte{1}] = shareTopic{id: [16]byte{1}, name: "orders", partitions: 3}
	g.topics[[16]byte{2}] = shareTopic{id: [16]byte{2}, name: "payments", partitions: 1}
	f.Add(shareGroupValue(g))
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, value []byte) {
		g := newShareGroup("g", time.Now())
		if err := decodeShareGroupValue(g, value); err != nil {
			return
		}
		// Whatever decodes encodes to a value that decodes to the same
		// group (byte equality does not hold: topics are encoded
		// sorted, and a topic given twice is kept once).
		again := shareGroupValue(g)
		g2 := newShareGroup("g", time.Now())
		if err := decodeShareGroupValue(g2, again); err != nil || g2.epoch != g.epoch || !g2.createdAt.Equal(g.createdAt) || len(g2.topics) != len(g.topics) {
			t.Fatalf("re-encoding of %x decodes to %+v, %v; want %+v", value, g2, err, g)
		}
		for id, tp := range g.topics {
			if g2.topics[id] != tp {
				t.Fatalf("topic %x: %+v after re-encoding, want %+v", id, g2.topics[id], tp)
			}
		}
		if len(g.topics) == 1 && countTopics(value) == 1 && !bytes.Equal(again, value) {
			t.Fatalf("a value with one topic re-encodes differently: %x, then %x", value, again)
		}
	})
}

// TestShareGroupValueRoundTrip checks that a group's record decodes to
// its epoch, creation time and topics.
func TestShareGroupValueRoundTrip(t *testing.T) {
	g := newShareGroup("g", time.UnixMilli(1700000000123))
	g.epoch = 42
	g.topics[[16]byte{9}] = shareTopic{id: [16]byte{9}, name: "orders", partitions: 12}
	got := newShareGroup("g", time.Now())
	if err := decodeShareGroupValue(got, shareGroupValue(g)); err != nil {
		t.Fatal(err)
	}
	if got.epoch != 42 || !got.createdAt.Equal(g.createdAt) || len(got.topics) != 1 || got.topics[[16]byte{9}] != g.topics[[16]byte{9}] {
		t.Fatalf("decoded %+v, want %+v", got, g)
	}
	for _, bad := range [][]byte{nil, {0, 1}, shareGroupValue(g)[:20], append(shareGroupValue(g), 0)} {
		if err := decodeShareGroupValue(newShareGroup("g", time.Now()), bad); err == nil {
			t.Errorf("decoded %x without an error", bad)
		}
	}
}

// countTopics returns the topic count a share group value declares
// (after version, epoch and creation time), -1 when too short.
func countTopics(value []byte) int32 {
	if len(value) < 18 {
		return -1
	}
	return int32(binary.BigEndian.Uint32(value[14:18]))
}
