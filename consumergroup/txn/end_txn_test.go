package txn

import (
	"math"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEndTxnVersion2 checks transaction version 2's EndTxn (v5): each end
// bumps the epoch, the markers carry the bumped epoch, the response names
// the epoch to continue with, a retry with the epoch before the bump gets
// the same answer (after a restart too), and an empty abort is allowed.
func TestEndTxnVersion2(t *testing.T) {
	h := newHarness(t, testConfig())
	pid, epoch := h.mustInit()
	if got := h.add(3, pid, epoch, "t1", 0, 1); !slices.Equal(got, []int16{0, 0}) {
		t.Fatalf("add: %v", got)
	}
	resp := h.end2(pid, epoch, true)
	if resp.ErrorCode != 0 || resp.ProducerID != pid || resp.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn v5: %v, producer %d/%d, want %d/%d", kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch, pid, epoch+1)
	}
	h.waitState("CompleteCommit")
	written := h.markers.markers()
	if len(written) != 2 {
		t.Fatalf("markers %+v, want 2", written)
	}
	for _, w := range written {
		if !w.marker.Commit || w.marker.ProducerID != pid || w.marker.ProducerEpoch != epoch+1 {
			t.Errorf("marker %+v, want a commit at the bumped epoch %d", w, epoch+1)
		}
	}
	if d := h.describe(); d.ProducerEpoch != epoch+1 {
		t.Errorf("described epoch %d, want %d", d.ProducerEpoch, epoch+1)
	}
	// The old epoch is fenced for anything but a retry of the end.
	if got := h.add(3, pid, epoch, "t1", 0); !slices.Equal(got, codes(kerr.ProducerFenced)) {
		t.Errorf("add at the old epoch: %v", got)
	}
	check := func(what string, resp2 *kmsg.EndTxnResponse, code *kerr.Error, wantEpoch int16) {
		t.Helper()
		if code != nil {
			if resp2.ErrorCode != code.Code {
				t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(resp2.ErrorCode), code)
			}
			return
		}
		if resp2.ErrorCode != 0 || resp2.ProducerID != pid || resp2.ProducerEpoch != wantEpoch {
			t.Errorf("%s: %v, producer %d/%d, want %d/%d", what, kerr.ErrorForCode(resp2.ErrorCode), resp2.ProducerID, resp2.ProducerEpoch, pid, wantEpoch)
		}
	}
	check("retry", h.end2(pid, epoch, true), nil, epoch+1)
	check("retry with the other outcome", h.end2(pid, epoch, false), kerr.InvalidTxnState, 0)
	h.restart()
	check("retry after a restart", h.end2(pid, epoch, true), nil, epoch+1)
	// A new transaction at the bumped epoch; then an empty one, whose
	// commit is refused and whose abort bumps the epoch again.
	if got := h.add(3, pid, epoch+1, "t1", 2); !slices.Equal(got, []int16{0}) {
		t.Fatalf("add at the bumped epoch: %v", got)
	}
	check("abort", h.end2(pid, epoch+1, false), nil, epoch+2)
	h.waitState("CompleteAbort")
	if written := h.markers.markers(); len(written) != 3 || written[2].marker.Commit || written[2].marker.ProducerEpoch != epoch+2 {
		t.Fatalf("abort marker %+v", written)
	}
	check("empty commit", h.end2(pid, epoch+2, true), kerr.InvalidTxnState, 0)
	check("empty abort", h.end2(pid, epoch+2, false), nil, epoch+3)
	h.waitState("CompleteAbort")
	if written := h.markers.markers(); len(written) != 3 {
		t.Errorf("the empty abort wrote markers: %+v", written[3:])
	}
	check("fenced", h.end2(pid, epoch+1, false), kerr.ProducerFenced, 0)
}

// TestEndTxnVersion2Overflow checks that a version 2 end that exhausts
// the epoch writes its markers with the last epoch and hands the client a
// new producer id at epoch 0, and that a retry with the old producer gets
// the same answer.
func TestEndTxnVersion2Overflow(t *testing.T) {
	h := newHarness(t, testConfig())
	pid, _ := h.mustInit()
	last := int16(math.MaxInt16 - 1)
	h.c.mu.Lock()
	h.c.txns[testID].producerEpoch = last
	h.c.mu.Unlock()
	if got := h.add(3, pid, last, "t1", 0); !slices.Equal(got, []int16{0}) {
		t.Fatalf("add: %v", got)
	}
	resp := h.end2(pid, last, true)
	if resp.ErrorCode != 0 || resp.ProducerID == pid || resp.ProducerEpoch != 0 {
		t.Fatalf("EndTxn v5 at epoch %d: %v, producer %d/%d, want a new id at 0", last, kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch)
	}
	next := resp.ProducerID
	d := h.waitState("CompleteCommit")
	if d.ProducerID != next || d.ProducerEpoch != 0 {
		t.Errorf("described producer %d/%d, want %d/0", d.ProducerID, d.ProducerEpoch, next)
	}
	written := h.markers.markers()
	if len(written) != 1 || written[0].marker.ProducerID != pid || written[0].marker.ProducerEpoch != math.MaxInt16 {
		t.Fatalf("markers %+v, want one of producer %d at epoch %d", written, pid, math.MaxInt16)
	}
	retry := h.end2(pid, last, true)
	if retry.ErrorCode != 0 || retry.ProducerID != next || retry.ProducerEpoch != 0 {
		t.Errorf("retry: %v, producer %d/%d", kerr.ErrorForCode(retry.ErrorCode), retry.ProducerID, retry.ProducerEpoch)
	}
	if got := h.add(3, next, 0, "t1", 1); !slices.Equal(got, []int16{0}) {
		t.Errorf("add with the new producer id: %v", got)
	}
}

// TestEndTxnVersion2WhileCompleting checks the answers of version 2 ends
// while the previous end's markers are being written: the next
// transaction's end and a retry of the end wait (CONCURRENT_TRANSACTIONS),
// a retry asking the other outcome is INVALID_TXN_STATE.
func TestEndTxnVersion2WhileCompleting(t *testing.T) {
	h := newHarness(t, testConfig())
	gate := make(chan struct{})
	h.markers.gate = gate
	pid, epoch := h.mustInit()
	if got := h.add(3, pid, epoch, "t1", 0); !slices.Equal(got, []int16{0}) {
		t.Fatalf("add: %v", got)
	}
	if resp := h.end2(pid, epoch, true); resp.ErrorCode != 0 || resp.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn v5: %v, epoch %d", kerr.ErrorForCode(resp.ErrorCode), resp.ProducerEpoch)
	}
	for _, tc := range []struct {
		name   string
		epoch  int16
		commit bool
		want   *kerr.Error
	}{
		{"the next transaction's abort", epoch + 1, false, kerr.ConcurrentTransactions},
		{"the next transaction's commit", epoch + 1, true, kerr.ConcurrentTransactions},
		{"a retry", epoch, true, kerr.ConcurrentTransactions},
		{"a retry with the other outcome", epoch, false, kerr.InvalidTxnState},
	} {
		if got := h.end2(pid, tc.epoch, tc.commit).ErrorCode; got != tc.want.Code {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(got), tc.want)
		}
	}
	close(gate)
	h.waitState("CompleteCommit")
	if resp := h.end2(pid, epoch+1, false); resp.ErrorCode != 0 || resp.ProducerEpoch != epoch+2 {
		t.Errorf("empty abort once complete: %v, epoch %d", kerr.ErrorForCode(resp.ErrorCode), resp.ProducerEpoch)
	}
}
