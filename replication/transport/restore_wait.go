package transport

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// Restore wait. A replica that installs a snapshot catches up inside
// raft's restore by reading the leader's log (ReadLog, chunk by chunk),
// and raft answers the InstallSnapshot only when the restore ends: the
// call lasts as long as the catch-up, which for a replica missing more
// than a few chunks is longer than Timeout. Were both ends to give up at
// Timeout, as for any RPC, the restore would go on unanswered and raft's
// leader would send the snapshot again only at its next new entry or
// CommitTimeout: a group with no traffic, or one that cannot commit
// without the restoring replica (two replicas), would wait that long per
// attempt. So a ReadLog extends the wait of the InstallSnapshot in
// progress between the same two nodes to at least Timeout from then, at
// both ends: the leader's call (its stream's deadline) when it serves a
// ReadLog from the replica, and the replica's wait for raft's answer when
// a ReadLog of the group gets its answer. A restore that stops reading
// for Timeout (stalled, or a long step after its last read) still times
// out as before, and raft sends the snapshot again. An install answered
// Success is told to the group (SetRestoredHandler): the target's
// catch-up from this node's log has ended.

// SetRestoredHandler installs fn, called with the target's address when
// an InstallSnapshot this group sent is answered Success: the target's
// restore, its catch-up from this node's log included, has ended. It runs
// on raft's replication goroutine and must not block; nil removes it.
func (t *Transport) SetRestoredHandler(fn func(raft.ServerAddress)) {
	t.logReaderMu.Lock()
	defer t.logReaderMu.Unlock()
	t.restoredFn = fn
}

func (t *Transport) restoredHandler() func(raft.ServerAddress) {
	t.logReaderMu.Lock()
	defer t.logReaderMu.Unlock()
	return t.restoredFn
}

// snapshotOut is an InstallSnapshot stream in progress from this group.
type snapshotOut struct {
	conn  net.Conn
	until time.Time // the stream's deadline; guarded by Transport.snapOutMu
}

// trackSnapshotOut records conn, with deadline until (already set), as
// the stream of the InstallSnapshot to target until the returned func is
// called.
func (t *Transport) trackSnapshotOut(target raft.ServerAddress, conn net.Conn, until time.Time) (untrack func()) {
	s := &snapshotOut{conn: conn, until: until}
	t.snapOutMu.Lock()
	if t.snapOut == nil {
		t.snapOut = map[raft.ServerAddress]*snapshotOut{}
	}
	t.snapOut[target] = s
	t.snapOutMu.Unlock()
	return func() {
		t.snapOutMu.Lock()
		if t.snapOut[target] == s {
			delete(t.snapOut, target)
		}
		t.snapOutMu.Unlock()
	}
}

// extendSnapshotOut moves the deadline of the InstallSnapshot stream to
// asker, if one is in progress, to at least Timeout from now: asker's
// restore is reading this node's log.
func (t *Transport) extendSnapshotOut(asker raft.ServerAddress) {
	t.snapOutMu.Lock()
	defer t.snapOutMu.Unlock()
	s := t.snapOut[asker]
	if s == nil {
		return
	}
	if until := deadline(t.m.cfg.Timeout); until.After(s.until) {
		s.until = until
		s.conn.SetDeadline(until) // applies to the response read waiting on it
	}
}

// noteRestoreRead tells an InstallSnapshot waiting for raft's answer
// that a ReadLog of this group got its answer.
func (t *Transport) noteRestoreRead() {
	select {
	case t.restoreRead <- struct{}{}:
	default:
	}
}

// deliverSnapshot hands an InstallSnapshot to raft as deliver does, but
// its wait for raft's answer moves to at least Timeout after each ReadLog
// of this group answered meanwhile.
func (t *Transport) deliverSnapshot(rpc raft.RPC, timeout time.Duration) (any, error) {
	select { // a read of an earlier restore
	case <-t.restoreRead:
	default:
	}
	respCh := make(chan raft.RPCResponse, 1)
	rpc.RespChan = respCh
	until := deadline(timeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case t.consumer <- rpc:
	case <-timer.C:
		return nil, fmt.Errorf("%w: raft of group %q took no rpc for %v", ErrGroupBusy, t.group, timeout)
	case <-t.ctx.Done():
		return nil, fmt.Errorf("%w: group %q", ErrClosed, t.group)
	}
	for {
		select {
		case r := <-respCh:
			return r.Response, r.Error
		case <-t.restoreRead:
			if later := deadline(t.m.cfg.Timeout); later.After(until) {
				until = later
				timer.Reset(time.Until(until))
			}
		case <-timer.C:
			return nil, fmt.Errorf("%w: raft of group %q did not answer the snapshot install in time", ErrGroupBusy, t.group)
		case <-t.ctx.Done():
			return nil, fmt.Errorf("%w: group %q", ErrClosed, t.group)
		}
	}
}
