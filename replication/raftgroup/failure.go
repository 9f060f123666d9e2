package raftgroup

import (
	"fmt"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// A replica whose storage failed leaves its group: a write or fsync of
// its segment log or sidecar failed (the Raft log store is then failed
// for good, see raftlog.Store.Failed), or the FSM could not apply a
// committed entry. Such a node must neither lead (it cannot store what
// it would propose) nor vote (it cannot durably record its vote nor the
// entries it would acknowledge), so the group's watch goroutine hands
// leadership to another replica when it still leads and shuts this
// node's Raft down; the other replicas, a majority when only this disk
// failed, elect a leader and go on. The node stays out of the group until
// it restarts: Open then recovers from what the files hold, so nothing a
// failed fsync may have lost is trusted.

// fail records why this replica left its group (the first reason wins),
// stops accepting appends at once and asks the watch goroutine to step
// down. It never blocks: it is called from Raft's goroutines, with the
// store's lock held.
func (g *Group) fail(err error) {
	if !g.failure.CompareAndSwap(nil, &err) {
		return
	}
	if g.ready.Swap(false) {
		g.ledAtFailure.Store(true)
		g.signal()
	}
	select {
	case g.failed <- struct{}{}:
	default:
	}
}

// Fail makes the replica leave its group because its storage failed
// outside the Raft log store (a read of its segments for a fetch, say),
// as a write or fsync failure of the store does: it stops leading and
// voting until the node restarts, and Failed returns err. It returns at
// once; the step-down runs on the group's goroutine.
func (g *Group) Fail(err error) { g.fail(err) }

// Failed returns why this replica left its group (its storage failed),
// or nil while it takes part. Safe for concurrent use.
func (g *Group) Failed() error {
	if p := g.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// stepDown runs on the watch goroutine after fail: it transfers
// leadership if this node still leads (raft itself already stepped down
// when storing its own entries failed) and shuts this node's Raft down,
// so that it neither leads nor votes again.
func (g *Group) stepDown() {
	err := g.Failed()
	g.logger.Error("partition storage failed: this replica stops leading and voting until the node restarts",
		zap.Bool("storage-error", log.IsStorageError(err)), zap.Error(err))
	if g.leaver != nil {
		// From now on no vote or heartbeat of a later term reaches this
		// raft: it would store the term, which fails, and raft panics
		// then (the process, not the group). The transfer and the
		// announcement below go out all the same.
		g.leaver.Detach()
	}
	handedOver := false
	if g.raft.State() == raft.Leader {
		if terr := g.raft.LeadershipTransfer().Error(); terr != nil {
			g.logger.Warn("leadership transfer after storage failure", zap.Error(terr))
		} else {
			handedOver = true
		}
	}
	if !handedOver && g.ledAtFailure.Load() && g.leaver != nil {
		// Raft stepped down by itself (storing its own entries failed)
		// or the transfer failed: the followers still follow this node,
		// whose process the failure detector sees alive, and would wait
		// for Raft's heartbeat timeout. Tell them, so they elect at once
		// (failover.go).
		if err := g.leaver.AnnounceLeaving(g.peerAddresses()); err != nil {
			g.logger.Warn("telling the followers this replica left", zap.Error(err))
		}
	}
	g.endAppendRetries()
	if serr := g.raft.Shutdown().Error(); serr != nil {
		g.logger.Warn("raft shutdown after storage failure", zap.Error(serr))
	}
	g.logger.Info("left the partition's raft group")
}

// failedError is what an append on a replica that left its group is
// answered: KAFKA_STORAGE_ERROR, which clients retry after refreshing
// metadata (they then find the new leader), with the reason.
func failedError(err error) error {
	return fmt.Errorf("this replica's storage failed, it no longer leads (%v): %w", err, kerr.KafkaStorageError)
}

// peerAddresses returns the addresses of the other servers of the
// group's configuration.
func (g *Group) peerAddresses() []raft.ServerAddress {
	f := g.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []raft.ServerAddress
	for _, s := range f.Configuration().Servers {
		if s.ID != g.id {
			out = append(out, s.Address)
		}
	}
	return out
}
