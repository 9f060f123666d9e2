package replication

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// answeringTransport answers every AppendEntries with success (or the
// error set) and hands out a pipeline marker.
type answeringTransport struct {
	raft.Transport
	fail      error
	pipelines int
}

func (a *answeringTransport) AppendEntries(_ raft.ServerID, _ raft.ServerAddress, _ *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	resp.Success = a.fail == nil
	return a.fail
}

func (a *answeringTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	a.pipelines++
	return nil, nil
}

func TestProgressTransport(t *testing.T) {
	inner := &answeringTransport{}
	pt := newProgressTransport(inner)
	send := func(id raft.ServerID, prev uint64, entries ...uint64) {
		t.Helper()
		req := &raft.AppendEntriesRequest{PrevLogEntry: prev}
		for _, i := range entries {
			req.Entries = append(req.Entries, &raft.Log{Index: i})
		}
		_ = pt.AppendEntries(id, "addr", req, &raft.AppendEntriesResponse{})
	}

	// Untracked servers pipeline and record nothing.
	send("2", 0, 1, 2)
	if _, tracked, _ := pt.progress("2"); tracked {
		t.Fatal("untracked server is tracked")
	}
	if _, err := pt.AppendEntriesPipeline("2", "addr"); err != nil || inner.pipelines != 1 {
		t.Fatalf("untracked pipeline: %v, %d", err, inner.pipelines)
	}

	pt.track("3")
	if _, err := pt.AppendEntriesPipeline("3", "addr"); !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		t.Fatalf("tracked server pipelines: %v", err)
	}
	_, _, changed := pt.progress("3")
	send("3", 0, 1, 2, 3)
	select {
	case <-changed:
	default:
		t.Fatal("progress did not signal")
	}
	if match, _, _ := pt.progress("3"); match != 3 || !pt.caughtUp("3", 3) || pt.caughtUp("3", 4) {
		t.Fatalf("match %d after entries 1-3", match)
	}
	send("3", 2) // a heartbeat-like append behind: no step back
	inner.fail = errors.New("down")
	send("3", 9, 10)
	if match, _, _ := pt.progress("3"); match != 3 {
		t.Fatalf("match %d: a failed or older append moved it", match)
	}
	if pt.Unwrap() != inner {
		t.Fatal("Unwrap does not return the wrapped transport")
	}
	pt.untrack("3")
	if _, err := pt.AppendEntriesPipeline("3", "addr"); err != nil {
		t.Fatalf("untracked again: %v", err)
	}
}
