package transport

import (
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

// restoreReads returns the channel a ReadLog of this group signals when
// it gets its answer (noteRestoreRead), for an InstallSnapshot's wait to
// extend on (deliver); a signal left by an earlier restore is dropped.
func (t *Transport) restoreReads() <-chan struct{} {
	select {
	case <-t.restoreRead:
	default:
	}
	return t.restoreRead
}
