package raftlog

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// FuzzDecodeRecord feeds arbitrary bytes to the sidecar record decoder: it
// never panics, never reads past what it was given, and whatever it
// accepts re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []record{
		{kind: kindEntry, index: 7, entry: raft.Log{Index: 7, Term: 3, Type: raft.LogConfiguration, Data: []byte("servers")}},
		{kind: kindEntry, index: 9, entry: raft.Log{Index: 9, Term: 3, Type: raft.LogCommand, Data: []byte("admin"), Extensions: []byte{1}}},
		{kind: kindEntry, index: 1, entry: raft.Log{Index: 1, Term: 1, Type: raft.LogNoop}},
		{kind: kindMark, index: 12, offset: 4096},
		{kind: kindTruncate, index: 40},
		{kind: kindFirst, index: 30},
		{kind: kindReset, index: 0},
	} {
		f.Add(appendRecord(nil, &r))
	}
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := decodeRecord(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("decoded %d bytes of %d", n, len(b))
		}
		if again := appendRecord(nil, &r); !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b[:n])
		}
	})
}
