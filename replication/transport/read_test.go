package transport

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// TestReadLog: a group's log reader answers ReadLog from a peer with the
// bytes verbatim; a group without a reader, or not open, answers an error
// at once; a reader's error reaches the asker.
func TestReadLog(t *testing.T) {
	a, b := newTestMux(t, nil), newTestMux(t, nil)
	ta := mustTransport(t, a.Mux, "g")
	tb := mustTransport(t, b.Mux, "g")
	mustTransport(t, b.Mux, "quiet")
	taQuiet := mustTransport(t, a.Mux, "quiet")
	taMissing := mustTransport(t, a.Mux, "missing")

	data := bytes.Repeat([]byte("batch"), 100_000) // 500 KB: written from its own slice
	tb.SetLogReader(func(asker raft.ServerAddress, from int64, maxBytes int) (LogChunk, error) {
		if asker != a.Addr() {
			return LogChunk{}, fmt.Errorf("asked by %q, not %q", asker, a.Addr())
		}
		if from == 99 {
			return LogChunk{}, errors.New("offset 99 is cursed")
		}
		return LogChunk{LogStart: 5, End: from + int64(maxBytes), Batches: data[:min(maxBytes, len(data))]}, nil
	})

	got, err := ta.ReadLog(b.Addr(), 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got.LogStart != 5 || got.End != 10+1<<20 || !bytes.Equal(got.Batches, data) {
		t.Fatalf("read log: start %d end %d %d bytes, want 5, %d, %d bytes", got.LogStart, got.End, len(got.Batches), 10+1<<20, len(data))
	}
	if _, err := ta.ReadLog(b.Addr(), 99, 10); err == nil || !strings.Contains(err.Error(), "cursed") {
		t.Fatalf("reader error: got %v", err)
	}
	if _, err := taQuiet.ReadLog(b.Addr(), 0, 10); err == nil || !strings.Contains(err.Error(), "serves no log reads") {
		t.Fatalf("group without a reader: got %v", err)
	}
	if _, err := taMissing.ReadLog(b.Addr(), 0, 10); err == nil || !strings.Contains(err.Error(), "no group") {
		t.Fatalf("group not open on the peer: got %v", err)
	}
	if _, err := ta.ReadLog(b.Addr(), -1, 10); err == nil {
		t.Fatal("negative offset accepted")
	}
	if _, err := ta.ReadLog(b.Addr(), 0, a.cfg.MaxFrameSize); err == nil {
		t.Fatal("a size that cannot fit a frame accepted")
	}
	// The connection still serves the group after the errors.
	if _, err := ta.ReadLog(b.Addr(), 10, 100); err != nil {
		t.Fatal(err)
	}
}
