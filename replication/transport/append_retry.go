package transport

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// Append retry. When an AppendEntries fails, raft's leader tries that
// follower again at its next new entry or after CommitTimeout (to twice
// that), whichever comes first; an idle partition has no new entry, and
// its CommitTimeout is long (it is also how often an idle leader wakes per
// follower). A group that opts in (SetAppendRetryWait) has a failed
// AppendEntries (not a heartbeat) retried by the transport instead, within
// the wait, for the two failures that end by themselves:
//
//   - the follower's node is unreachable (a dial refused, or the failure
//     detector holds it down): the call waits for the peer to come back
//     (the detector's peer-up, or a new control connection) and is sent
//     again then;
//   - the connection broke under the call (the node may have died, or
//     only the connection): the call is sent again at once, on a new
//     connection, which then fails in one of the ways above or not;
//   - the follower's node has no such group open yet (a replica being
//     added by a reassignment, or a node starting): the call is sent
//     again every noGroupRetry.
//
// Any other failure (a timeout, a refusal by raft) is returned at once, as
// is the last one when the wait runs out. A RequestVote or
// RequestPreVote is retried too while the peer has no such group open
// (voteRetrying). Meanwhile raft's replication
// goroutine for that follower waits in the call, as it would in a slow
// one; its heartbeats go on from their own goroutine. Closing the group
// or EndAppendRetries ends the wait: raft's Shutdown waits for its
// replication goroutines before it closes the transport, so a group
// ends the retries before it shuts raft down. With the failure detector off (PeerFailureTimeout 0),
// which is what tells of a peer coming back, nothing is retried.

// noGroupRetry is how often an AppendEntries answered "no group" is sent
// again within the retry wait.
const noGroupRetry = 250 * time.Millisecond

// noGroupText is in the error a node answers for a group it does not
// have open.
const noGroupText = "no group "

// errNoGroup is matched (errors.Is) by the error of an RPC the peer
// answered with noGroupText.
var errNoGroup = errors.New("transport: group not open on the peer")

// brokenConnError fails the calls pending on a connection that broke.
type brokenConnError struct {
	addr string
	err  error
}

func (e *brokenConnError) Error() string {
	return fmt.Sprintf("transport: connection to %s broke: %v", e.addr, e.err)
}
func (e *brokenConnError) Unwrap() error { return e.err }

// noGroupError is a peer's answer that it has no such group open.
type noGroupError struct{ msg string }

func (e *noGroupError) Error() string        { return e.msg }
func (e *noGroupError) Is(target error) bool { return target == errNoGroup }

// remoteError turns a peer's error message into an error.
func remoteError(msg string) error {
	if strings.Contains(msg, ": "+noGroupText) {
		return &noGroupError{msg: msg}
	}
	return errors.New(msg)
}

// SetAppendRetryWait makes this group's failed AppendEntries (not
// heartbeats) be retried for up to wait when the peer is unreachable or
// has the group not open (see above); 0, the default, turns it off.
func (t *Transport) SetAppendRetryWait(wait time.Duration) {
	t.appendRetryWait.Store(int64(wait))
}

// EndAppendRetries ends every retry wait of this group, now and later:
// raft's Shutdown waits for its replication goroutines, which may be
// waiting in one, before it closes the transport. Call it before
// shutting raft down.
func (t *Transport) EndAppendRetries() {
	t.retryStopOnce.Do(func() { close(t.retryStop) })
}

// Detach stops this group receiving: from now on every RPC for it is
// answered as for a group not open on this node, while its own calls
// still go out. A replica leaving its group because its storage failed
// detaches before it hands leadership over or tells its followers: a
// vote or heartbeat of a later term would make its raft store the term,
// which it cannot, and raft panics when storing a term fails.
func (t *Transport) Detach() { t.m.removeGroup(t) }

// appendRetrying sends args as rpc does and retries it as described
// above.
func (t *Transport) appendRetrying(target raft.ServerAddress, class connClass, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	return t.retrying(target, class, args, resp, func() { *resp = raft.AppendEntriesResponse{} }, true)
}

// voteRetrying sends a RequestVote or RequestPreVote as rpc does and,
// in a group that opts in, sends it again every noGroupRetry while the
// peer answers that it has no such group open: a replica whose node
// restarted as the group was created may open it a moment after a
// failover election asks for its vote, and the candidate, without it
// and with the dead leader's, would wait out raft's election timeout
// (20-40 s) before it asked again (BenchmarkCluster/failover measured
// such trials at 24-38 s). Asking again is safe: a node votes once per
// term and answers the same candidate the same.
func (t *Transport) voteRetrying(target raft.ServerAddress, req, resp any, reset func()) error {
	return t.retrying(target, classControl, req, resp, reset, false)
}

// retrying sends req and retries it on the failures above: every one of
// them when waitPeer, else only a group not open on the peer.
func (t *Transport) retrying(target raft.ServerAddress, class connClass, req, resp any, reset func(), waitPeer bool) error {
	err := t.rpc(target, class, req, resp)
	wait := time.Duration(t.appendRetryWait.Load())
	if err == nil || wait <= 0 || t.m.cfg.PeerFailureTimeout <= 0 {
		return err
	}
	select {
	case <-t.retryStop:
		return err
	default:
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	resent := false // sent again at once after a broken connection
	for err != nil {
		var broken *brokenConnError
		switch {
		case waitPeer && errors.As(err, &broken) && !resent:
			resent = true
			reset()
			err = t.rpc(target, class, req, resp)
			continue
		case errors.Is(err, errNoGroup):
			t.appendWaits.Add(1)
			retry := time.NewTimer(noGroupRetry)
			select {
			case <-retry.C:
			case <-deadline.C:
				retry.Stop()
				return err
			case <-t.ctx.Done():
				retry.Stop()
				return err
			case <-t.retryStop:
				retry.Stop()
				return err
			}
		case waitPeer && (errors.Is(err, syscall.ECONNREFUSED) || t.m.PeerDown(target)):
			up := t.m.peerUpSignal(target)
			if up == nil {
				return err
			}
			// Up meanwhile (the signal was taken before this check)?
			if t.m.PeerDown(target) || errors.Is(err, syscall.ECONNREFUSED) {
				t.appendWaits.Add(1)
				select {
				case <-up:
				case <-deadline.C:
					return err
				case <-t.ctx.Done():
					return err
				case <-t.retryStop:
					return err
				}
			}
		default:
			return err
		}
		resent = false
		reset()
		err = t.rpc(target, class, req, resp)
	}
	return nil
}

// upSignal is closed, and replaced, each time its peer comes up.
type upSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns the channel the next peer-up closes.
func (u *upSignal) wait() <-chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ch == nil {
		u.ch = make(chan struct{})
	}
	return u.ch
}

// fire closes the channel of everyone waiting.
func (u *upSignal) fire() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ch != nil {
		close(u.ch)
		u.ch = nil
	}
}

// peerUpSignal returns the channel the next peer-up of addr closes, nil
// for a peer this node does not know.
func (m *Mux) peerUpSignal(addr raft.ServerAddress) <-chan struct{} {
	m.mu.RLock()
	p := m.peers[addr]
	m.mu.RUnlock()
	if p == nil {
		return nil
	}
	return p.up.wait()
}
