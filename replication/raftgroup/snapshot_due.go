package raftgroup

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// snapshotDue is the fsm's call each time a multiple of SnapshotThreshold
// entries applied since the last snapshot. Unless a snapshot runs already or the last one
// was asked for less than SnapshotInterval ago, it asks Raft for one on a
// goroutine of its own: the fsm's goroutine, which calls this, is the one
// Raft takes the snapshot on, so it must not wait. It never blocks.
func (g *Group) snapshotDue() {
	select {
	case <-g.started:
	default:
		return // raft is replaying entries inside NewRaft
	}
	if g.snapshotting.Load() {
		return
	}
	now := time.Now()
	if last := g.lastSnapshot.Load(); last != 0 && now.Sub(time.Unix(0, last)) < g.cfg.SnapshotInterval {
		return
	}
	if !g.snapshotting.CompareAndSwap(false, true) {
		return
	}
	g.lastSnapshot.Store(now.UnixNano())
	// Raft's goroutines, this one's caller among them, end before Close
	// waits on done: the Add comes before the Wait.
	g.done.Add(1)
	go func() {
		defer g.done.Done()
		defer g.snapshotting.Store(false)
		err := g.raft.Snapshot().Error()
		// Failing is harmless: the next entry asks again, and Raft's
		// own check remains. Refusals are ordinary (nothing new, a
		// configuration change not applied yet, shutdown); storage
		// failures are reported where they happen.
		if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) && !errors.Is(err, raft.ErrRaftShutdown) {
			g.logger.Debug("snapshot", zap.Error(err))
		}
	}()
}
