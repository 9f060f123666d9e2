package replication

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/meta"
)

// Partition leaders record their elections in the metadata, so that a
// node holding no replica of a partition names its real leader and epoch
// in Metadata (as Kafka's controller tracks leaders). Each group that
// starts leading on this node adds its partition to the reporter; the
// reporter's goroutine waits leaderReportDelay for more, then sends them
// all in one command: proposed directly on the metadata leader, else
// through the RecordLeadersFunc the wire layer installs (AlterPartition to
// the metadata leader). A report that fails is kept, unless a newer one of
// the same partition replaced it, and retried after a backoff, or at once
// when the metadata leader changes.

const (
	// leaderReportDelay is how long the reporter waits after an election
	// for others: partitions that fail over together (a node lost) share
	// one command.
	leaderReportDelay = 20 * time.Millisecond
	// leaderReportMaxBackoff bounds the wait between failed reports.
	leaderReportMaxBackoff = 2 * time.Second
	// leaderReportBatch bounds the changes of one command (below
	// meta's limit).
	leaderReportBatch = 5000
)

// LeaderChange is one partition's election, as a leader reports it.
type LeaderChange = meta.LeaderChange

// RecordLeadersFunc sends changes, all led by this node, to the metadata
// leader, node leader (package wire sends AlterPartition). ctx bounds it.
type RecordLeadersFunc func(ctx context.Context, leader int32, changes []LeaderChange) error

// leaderReporter collects this node's elections until they are recorded.
// Safe for concurrent use; its goroutine is owned by the Cluster.
type leaderReporter struct {
	// wake has room for one signal: an election was added.
	wake chan struct{}
	// ctx ends when Close starts, cutting a report in flight short.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards the fields below.
	mu sync.Mutex
	// pending are the elections not yet recorded, latest per partition.
	pending map[meta.PartitionRef]LeaderChange
	// remote sends reports on a node that is not the metadata leader;
	// nil until SetLeaderReports.
	remote RecordLeadersFunc
}

func newLeaderReporter() *leaderReporter {
	ctx, cancel := context.WithCancel(context.Background())
	return &leaderReporter{wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, pending: map[meta.PartitionRef]LeaderChange{}}
}

// add records that this node leads ref in epoch; it never blocks (it runs
// on a group's watch goroutine).
func (r *leaderReporter) add(ref meta.PartitionRef, self, epoch int32) {
	r.mu.Lock()
	if old, ok := r.pending[ref]; !ok || old.Epoch < epoch {
		r.pending[ref] = LeaderChange{TopicID: ref.TopicID, Partition: ref.Partition, Leader: self, Epoch: epoch}
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take returns up to leaderReportBatch pending changes (they stay pending
// until done drops them).
func (r *leaderReporter) take() (map[meta.PartitionRef]LeaderChange, RecordLeadersFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	batch := make(map[meta.PartitionRef]LeaderChange, min(len(r.pending), leaderReportBatch))
	for ref, ch := range r.pending {
		if len(batch) == leaderReportBatch {
			break
		}
		batch[ref] = ch
	}
	return batch, r.remote
}

// done drops the changes of batch that no newer election replaced.
func (r *leaderReporter) done(batch map[meta.PartitionRef]LeaderChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ref, ch := range batch {
		if r.pending[ref] == ch {
			delete(r.pending, ref)
		}
	}
}

// SetLeaderReports installs how this node sends its partitions' elections
// to the metadata leader when it is not the leader itself (cmd/sluice
// passes the wire server's). Until then, such reports wait.
func (c *Cluster) SetLeaderReports(f RecordLeadersFunc) {
	c.reporter.mu.Lock()
	c.reporter.remote = f
	c.reporter.mu.Unlock()
	select {
	case c.reporter.wake <- struct{}{}:
	default:
	}
}

// RecordLeaders records elections reported by node from (AlterPartition)
// or by this node, on the metadata leader: elsewhere the error is a
// *meta.NotLeaderError (kerr.NotController). A node that is not
// registered is kerr.ClusterAuthorizationFailed; changes naming another
// leader than from are kerr.InvalidRequest. Stale changes are skipped
// (see meta.RecordLeaders); it returns how many were recorded.
func (c *Cluster) RecordLeaders(ctx context.Context, from int32, changes []LeaderChange) (int, error) {
	if c.isClosed() {
		return 0, ErrClosed
	}
	if err := c.controller(); err != nil {
		return 0, err
	}
	if _, ok := c.group.State().Node(from); !ok {
		return 0, fmt.Errorf("node %d is not a member of this cluster: %w", from, kerr.ClusterAuthorizationFailed)
	}
	for _, ch := range changes {
		if ch.Leader != from {
			return 0, fmt.Errorf("node %d reports node %d as a leader; a node reports only its own elections: %w", from, ch.Leader, kerr.InvalidRequest)
		}
	}
	if len(changes) == 0 {
		return 0, nil
	}
	res, err := c.group.Propose(ctx, meta.NewRecordLeaders(changes))
	if err != nil {
		return 0, err
	}
	return res.Recorded, nil
}

// reportLeaders is the reporter's goroutine: it sends pending elections
// until stopReact is closed.
func (c *Cluster) reportLeaders() {
	defer close(c.reported)
	r := c.reporter
	backoff := time.Duration(0)
	for {
		var retry <-chan time.Time
		var timer *time.Timer
		if backoff > 0 {
			timer = time.NewTimer(backoff)
			retry = timer.C
		}
		select {
		case <-r.wake:
		case <-retry:
		case <-c.group.LeaderChanged():
		case <-c.stopReact:
			return
		}
		if timer != nil {
			timer.Stop()
		}
		if backoff == 0 {
			// Gather the elections of a failover into one command.
			select {
			case <-time.After(leaderReportDelay):
			case <-c.stopReact:
				return
			}
		}
		for {
			batch, remote := r.take()
			if len(batch) == 0 {
				backoff = 0
				break
			}
			if err := c.sendLeaders(batch, remote); err != nil {
				c.logger.Debug("report partition leaders", zap.Int("partitions", len(batch)), zap.Error(err))
				backoff = min(max(2*backoff, 100*time.Millisecond), leaderReportMaxBackoff)
				break
			}
			r.done(batch)
		}
	}
}

// sendLeaders records batch: proposed here on the metadata leader, else
// sent to it with remote.
func (c *Cluster) sendLeaders(batch map[meta.PartitionRef]LeaderChange, remote RecordLeadersFunc) error {
	changes := make([]LeaderChange, 0, len(batch))
	for _, ch := range batch {
		changes = append(changes, ch)
	}
	ctx, cancel := context.WithTimeout(c.reporter.ctx, c.cfg.Meta.ProposeTimeout)
	defer cancel()
	if c.group.IsLeader() {
		_, err := c.RecordLeaders(ctx, c.cfg.NodeID, changes)
		return err
	}
	leader, _ := c.group.Leader()
	switch {
	case leader < 0 || leader == c.cfg.NodeID:
		return fmt.Errorf("no metadata leader known: %w", kerr.NotController)
	case remote == nil:
		return fmt.Errorf("no way to reach the metadata leader yet: %w", kerr.NotController)
	}
	return remote(ctx, leader, changes)
}
