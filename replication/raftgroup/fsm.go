package raftgroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
)

// Snapshot format: the data lives in the segments, so a partition's Raft
// snapshot only says where replay after it starts.
//
//	0        1                 9
//	+--------+-----------------+
//	| ver=1  | next offset i64 |
//	+--------+-----------------+
const (
	snapshotVersion = 1
	snapshotSize    = 9
)

// result is what Apply returns to the proposer through raft's future.
type result struct {
	res partition.AppendResult
	err error
}

// fsm applies committed entries to the replica: the batches are already in
// the segment log (the Raft log store wrote them); applying records them
// in the producer state and moves the high watermark.
type fsm struct {
	replica *partition.Replica
	// next is the offset of the next batch to apply. Raft calls Apply and
	// Snapshot from one goroutine, so it and failed need no lock.
	next int64
	// failed, once set, fails every later Apply: the replica could not
	// apply an entry for a reason that is not the entry's.
	failed error
	// onFailure is told, once, that applying failed; it must not block.
	onFailure func(error)
	// restore makes the replica hold the committed log up to the offset
	// of a snapshot a leader installed (Group.catchUp).
	restore func(next int64) error
	// sinceSnapshot counts the entries applied since the last Snapshot;
	// each time it reaches a multiple of snapshotThreshold, Apply calls
	// snapshotDue (which must not block), so a snapshot refused within
	// SnapshotInterval is asked for again threshold entries later, not
	// at every entry.
	sinceSnapshot     uint64
	snapshotThreshold uint64
	snapshotDue       func()
}

var _ raft.FSM = (*fsm)(nil)

// Apply applies one committed entry.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Extensions) != 0 {
		return result{err: fmt.Errorf("raftgroup: entry %d: no partition command has extensions", l.Index)}
	}
	h, err := log.ParseBatchHeader(l.Data)
	if err != nil {
		return result{err: fmt.Errorf("raftgroup: entry %d: %w", l.Index, err)}
	}
	if f.failed != nil {
		return result{err: f.failed}
	}
	base := f.next
	res, err := f.replica.ApplyStored(l.Data, base, int32(l.Term))
	var code *kerr.Error
	if err != nil && !errors.As(err, &code) {
		// Not an outcome every replica shares (the replica closed, or
		// its storage failed): applying the next entry would put it at
		// a wrong offset. The group stops; the others go on.
		f.failed = fmt.Errorf("raftgroup: apply entry %d at offset %d: %w", l.Index, base, err)
		f.onFailure(f.failed)
		return result{err: f.failed}
	}
	f.next = base + int64(h.LastOffsetDelta) + 1
	f.replica.AdvanceHighWatermark(f.next)
	f.sinceSnapshot++
	if f.sinceSnapshot%f.snapshotThreshold == 0 && f.snapshotDue != nil {
		f.snapshotDue()
	}
	return result{res: res, err: err}
}

// Snapshot captures where replay after the snapshot's index starts.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.sinceSnapshot = 0
	return snapshot{next: f.next}, nil
}

// Restore is called only when a leader installs a snapshot (restart
// restores nothing: NoSnapshotRestoreOnStart): the replica catches up
// from the leader's segments to the snapshot's offset.
func (f *fsm) Restore(rc io.ReadCloser) error {
	b, err := io.ReadAll(io.LimitReader(rc, snapshotSize+1))
	_ = rc.Close()
	if err != nil {
		return fmt.Errorf("raftgroup: read the installed snapshot: %w", err)
	}
	s, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	if f.failed != nil {
		return f.failed
	}
	return f.restore(s.next)
}

// snapshot is a partition's Raft snapshot.
type snapshot struct{ next int64 }

// Persist writes the snapshot. It marks the sink as this node's own, so
// closing it announces no restore (see snapshotStore).
func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if p, ok := sink.(*pendingSink); ok {
		p.local = true
	}
	b := make([]byte, 0, snapshotSize)
	b = append(b, snapshotVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(s.next))
	if _, err := sink.Write(b); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release does nothing: the snapshot holds no resources.
func (snapshot) Release() {}

// decodeSnapshot reads a snapshot written by Persist.
func decodeSnapshot(b []byte) (snapshot, error) {
	if len(b) != snapshotSize || b[0] != snapshotVersion {
		return snapshot{}, fmt.Errorf("raftgroup: snapshot of %d bytes, version %d: not one this version wrote", len(b), firstByte(b))
	}
	next := int64(binary.BigEndian.Uint64(b[1:]))
	if next < 0 {
		return snapshot{}, fmt.Errorf("raftgroup: snapshot with offset %d", next)
	}
	return snapshot{next: next}, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}
