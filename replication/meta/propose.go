package meta

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
)

// NotLeaderError is returned by a Group operation that only the metadata
// leader can perform, on a node that is not the leader. It unwraps to
// kerr.NotController, so a Kafka handler answers NOT_CONTROLLER and an
// internal caller forwards to LeaderID.
type NotLeaderError struct {
	// LeaderID is the leader's node id, or -1 when no leader is known
	// (an election is under way).
	LeaderID int32
	// LeaderAddress is the leader's Raft address, "" when unknown.
	LeaderAddress string
	// Uncertain is set when the proposal was appended but leadership was
	// lost before it committed: it may yet take effect. Retrying a command
	// must then tolerate "already done" (TopicAlreadyExists, ...).
	Uncertain bool
}

// Error says that this node is not the leader and names the leader.
func (e *NotLeaderError) Error() string {
	what := "not the metadata leader"
	if e.Uncertain {
		what = "lost metadata leadership before the proposal committed; it may still take effect"
	}
	if e.LeaderID < 0 {
		return "meta: " + what + "; no leader known"
	}
	return fmt.Sprintf("meta: %s; the leader is node %d at %s", what, e.LeaderID, e.LeaderAddress)
}

// Unwrap returns kerr.NotController.
func (e *NotLeaderError) Unwrap() error { return kerr.NotController }

// notLeader returns the NotLeaderError for this moment.
func (g *Group) notLeader(uncertain bool) error {
	id, addr := g.Leader()
	if id == g.cfg.Self.ID {
		// Raft still names us but refused: leadership is moving.
		id, addr = -1, ""
	}
	return &NotLeaderError{LeaderID: id, LeaderAddress: addr, Uncertain: uncertain}
}

// translate turns a Raft error into this package's.
func (g *Group) translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return g.notLeader(false)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return g.notLeader(true)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("meta: %w: %w", err, kerr.RequestTimedOut)
	}
	return fmt.Errorf("meta: %w", err)
}

// timeout returns how long Raft may take to enqueue: until ctx's
// deadline, or cfg.ProposeTimeout.
func (g *Group) timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return g.cfg.ProposeTimeout
}

// await waits for f, ctx, or the group's Close. Raft resolves almost
// every future by Shutdown at the latest, but not one of an entry it had
// committed and queued for its FSM when it shut down (hashicorp/raft
// v1.7.2: the FSM goroutine may exit with entries still queued, and an
// Apply future has no shutdown channel): the goroutine waiting on such a
// future never ends. So Close does not wait for these goroutines (a
// caught TestShareGroupMembershipChanges hang: Close waited 9 minutes),
// and the wait here ends when Close has shut Raft down.
func (g *Group) await(ctx context.Context, f raft.Future) error {
	g.mu.RLock()
	closed := g.closed
	g.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return g.translate(err)
	case <-ctx.Done():
		return fmt.Errorf("meta: stopped waiting, the outcome is unknown: %w", ctx.Err())
	case <-g.shutDown:
		return ErrClosed
	}
}

// Propose proposes cmd to the metadata group and waits until it is
// applied here. On a follower it returns a *NotLeaderError (unwrapping to
// kerr.NotController) naming the leader, so the caller forwards. A
// refused command returns its Result and Result.Err (a wrapped
// *kerr.Error). If ctx ends first the command may still apply.
func (g *Group) Propose(ctx context.Context, cmd Command) (Result, error) {
	b, err := Encode(cmd)
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("meta: not proposed: %w", err)
	}
	switch g.raft.State() {
	case raft.Leader:
	case raft.Shutdown:
		return Result{}, ErrClosed
	default:
		return Result{}, g.notLeader(false)
	}
	f := g.raft.Apply(b, g.timeout(ctx))
	if err := g.await(ctx, f); err != nil {
		return Result{}, err
	}
	res, ok := f.Response().(*Result)
	if !ok {
		return Result{}, fmt.Errorf("meta: FSM answered %T", f.Response())
	}
	return *res, res.Err
}
