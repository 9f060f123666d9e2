package transport

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestInstallSnapshotWaitsForRestoreReads: an InstallSnapshot whose
// restore reads the sender's log for longer than Timeout in all, each
// read within Timeout of the last, is answered, not failed at Timeout;
// one whose restore stops reading fails at Timeout after its last read.
func TestInstallSnapshotWaitsForRestoreReads(t *testing.T) {
	const timeout = 400 * time.Millisecond
	short := func(cfg *Config, _ *Options) { cfg.Timeout = timeout }
	a, b := newTestMux(t, short), newTestMux(t, short)
	reads := map[string]int{"reading": 8, "stalled": 1}
	senders := map[string]*Transport{}
	for group, n := range reads {
		ta := mustTransport(t, a.Mux, group)
		senders[group] = ta
		ta.SetLogReader(func(raft.ServerAddress, int64, int) (LogChunk, error) {
			return LogChunk{End: 1, Batches: []byte("batch")}, nil
		})
		tb := mustTransport(t, b.Mux, group)
		serveRPCs(t, tb, func(rpc raft.RPC) {
			req, ok := rpc.Command.(*raft.InstallSnapshotRequest)
			if !ok {
				rpc.Respond(nil, errors.New("unexpected rpc"))
				return
			}
			if _, err := io.Copy(io.Discard, rpc.Reader); err != nil {
				rpc.Respond(nil, err)
				return
			}
			// A restore: n reads of the leader's log, a slow link
			// between them; "stalled" then works on without reading.
			for range n {
				time.Sleep(timeout / 2)
				if _, err := tb.ReadLog(a.Addr(), 0, 100); err != nil {
					rpc.Respond(nil, err)
					return
				}
			}
			if n == 1 {
				time.Sleep(3 * timeout)
			}
			rpc.Respond(&raft.InstallSnapshotResponse{Term: req.Term, Success: true}, nil)
		})
	}
	install := func(group string) (time.Duration, error) {
		ta := senders[group]
		snapshot := []byte("snapshot")
		req := &raft.InstallSnapshotRequest{Term: 3, Leader: []byte(a.Addr()), LastLogIndex: 9, LastLogTerm: 3, Size: int64(len(snapshot))}
		var resp raft.InstallSnapshotResponse
		began := time.Now()
		err := ta.InstallSnapshot("b", b.Addr(), req, &resp, bytes.NewReader(snapshot))
		if err == nil && (!resp.Success || resp.Term != 3) {
			t.Fatalf("%s: answer %+v, want success in term 3", group, resp)
		}
		return time.Since(began), err
	}

	took, err := install("reading")
	if err != nil {
		t.Fatalf("a restore reading the log for %v in all (Timeout %v): %v", took, timeout, err)
	}
	if took < 3*timeout {
		t.Fatalf("the restore took %v, want well over Timeout %v for the test to mean anything", took, timeout)
	}
	took, err = install("stalled")
	// Both ends give up about together: the sender's read, or the
	// receiver's wait for raft, whichever is first.
	if !errors.Is(err, os.ErrDeadlineExceeded) && (err == nil || !strings.Contains(err.Error(), "did not answer in time")) {
		t.Fatalf("a restore that stopped reading: after %v, %v; want a timeout", took, err)
	}
	if took > 3*timeout {
		t.Fatalf("a restore that stopped reading failed after %v, want about Timeout %v after its read", took, timeout)
	}
}
