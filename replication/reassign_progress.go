package replication

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// progressTransport is a partition group's raft.Transport that tells the
// leader how far a replica being added has caught up: hashicorp/raft
// keeps each follower's match index to itself. For a tracked server it
// refuses pipelining (raft then replicates to it with plain
// AppendEntries, up to MaxAppendEntries per call) and records the last
// index each successful AppendEntries covered. Untracked servers, every
// other RPC and the transport's own capabilities (raft.WithClose,
// raft.WithPreVote) pass straight through, so a group in no reassignment
// costs nothing more. Safe for concurrent use.
type progressTransport struct {
	raft.Transport

	// count is len(tracked), read without mu so that heartbeats and
	// appends of a group with nothing tracked take no lock.
	count atomic.Int32

	// mu guards tracked and changed.
	mu sync.Mutex
	// tracked holds the match index of each tracked server: the last
	// entry it has acknowledged storing (0 until it acknowledges one).
	tracked map[raft.ServerID]uint64
	// changed is closed, and replaced, each time a tracked match index
	// moves.
	changed chan struct{}
}

var (
	_ raft.Transport   = (*progressTransport)(nil)
	_ raft.WithClose   = (*progressTransport)(nil)
	_ raft.WithPreVote = (*progressTransport)(nil)
)

func newProgressTransport(t raft.Transport) *progressTransport {
	return &progressTransport{Transport: t, tracked: map[raft.ServerID]uint64{}, changed: make(chan struct{})}
}

// track starts recording id's progress from zero.
func (t *progressTransport) track(id raft.ServerID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tracked[id] = 0
	t.count.Store(int32(len(t.tracked)))
}

// untrack stops recording id's progress; raft may pipeline to it again.
func (t *progressTransport) untrack(id raft.ServerID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.tracked, id)
	t.count.Store(int32(len(t.tracked)))
}

// progress returns id's match index, whether id is tracked, and a
// channel closed when a tracked match index next moves.
func (t *progressTransport) progress(id raft.ServerID) (match uint64, tracked bool, changed <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	match, tracked = t.tracked[id]
	return match, tracked, t.changed
}

// caughtUp reports whether tracked server id has stored entry index.
func (t *progressTransport) caughtUp(id raft.ServerID, index uint64) bool {
	match, tracked, _ := t.progress(id)
	return tracked && match >= index
}

// AppendEntries sends args and records, for a tracked server, how far a
// successful answer shows it is.
func (t *progressTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := t.Transport.AppendEntries(id, target, args, resp)
	if err != nil || !resp.Success || t.count.Load() == 0 {
		return err
	}
	last := args.PrevLogEntry
	if n := len(args.Entries); n > 0 {
		last = args.Entries[n-1].Index
	}
	t.mu.Lock()
	if match, ok := t.tracked[id]; ok && last > match {
		t.tracked[id] = last
		close(t.changed)
		t.changed = make(chan struct{})
	}
	t.mu.Unlock()
	return nil
}

// AppendEntriesPipeline refuses a tracked server, so its progress is
// seen, and passes the others through.
func (t *progressTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	if t.count.Load() == 0 {
		return t.Transport.AppendEntriesPipeline(id, target)
	}
	t.mu.Lock()
	_, tracked := t.tracked[id]
	t.mu.Unlock()
	if tracked {
		return nil, raft.ErrPipelineReplicationNotSupported
	}
	return t.Transport.AppendEntriesPipeline(id, target)
}

// RequestPreVote passes through when the wrapped transport speaks
// pre-vote, and fails otherwise (raft then falls back to plain votes).
func (t *progressTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	pv, ok := t.Transport.(raft.WithPreVote)
	if !ok {
		return raft.ErrUnsupportedProtocol
	}
	return pv.RequestPreVote(id, target, args, resp)
}

// Close closes the wrapped transport if it can be closed.
func (t *progressTransport) Close() error {
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// Unwrap returns the wrapped transport, for a caller that needs a
// capability of the concrete transport beyond raft's interfaces.
func (t *progressTransport) Unwrap() raft.Transport { return t.Transport }
