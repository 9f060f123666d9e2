package replication

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/raftgroup"
)

// Partition is the cluster's handle of one partition: what the layers above
// (wire, consumergroup) may do with it, and nothing more. The replica stays
// behind it: they cannot close, delete, truncate or reconfigure it, nor set
// its leader epoch. Each consumer declares the subset it uses as its own
// interface (wire.Partition, consumergroup.Partition).
//
// A partition with a replica here has a Raft group (raftgroup) whose
// leader serves it: on the leader Append is a proposal and the reads are
// the replica's; on a follower, and on a node with no replica of it, every
// operation answers NOT_LEADER_OR_FOLLOWER.
type Partition struct {
	// Topic and Index name the partition.
	Topic string
	Index int32

	// replica and group are both set on a node that holds a replica of
	// the partition, both nil elsewhere.
	replica *partition.Replica
	group   *raftgroup.Group
	// progress is the group's transport, which tracks replicas being
	// added (reassign.go); nil for an in-memory group.
	progress *progressTransport
	// replicas are the nodes holding the partition, preferred leader
	// first, from the metadata; self is this node's id.
	replicas []int32
	self     int32
	// recordedLeader and recordedEpoch are the leader the metadata
	// records for a partition with no replica here (RecordLeaders);
	// recordedEpoch is 0 when none is recorded.
	recordedLeader, recordedEpoch int32
}

// serving returns the replica when this node may serve the partition (it
// holds a replica and leads its group), else NOT_LEADER_OR_FOLLOWER.
func (p *Partition) serving() (*partition.Replica, error) {
	if p.group == nil || !p.group.IsLeader() {
		return nil, kerr.NotLeaderForPartition
	}
	return p.replica, nil
}

// Leader returns the node leading the partition and its leader epoch: the
// Raft leader and term of the partition's group when this node holds a
// replica; for a partition with no replica here, the leader its group
// last elected as the metadata records it (leaders report their
// elections: leaders.go), else the preferred replica (the first) with
// epoch -1, a guess. -1 when no leader is known.
func (p *Partition) Leader() (node int32, epoch int32) {
	switch {
	case p.group != nil && p.group.IsLeader():
		return p.self, p.group.LeaderEpoch()
	case p.group != nil:
		id, _ := p.group.Leader()
		n, err := strconv.ParseInt(string(id), 10, 32)
		if id == "" || err != nil {
			return -1, p.group.Term()
		}
		return int32(n), p.group.Term()
	case p.recordedEpoch > 0:
		return p.recordedLeader, p.recordedEpoch
	case len(p.replicas) > 0:
		return p.replicas[0], -1
	}
	return -1, -1
}

// Replicas returns the nodes holding the partition, preferred leader
// first. The caller must not modify the slice.
func (p *Partition) Replicas() []int32 { return p.replicas }

// InSync returns the replicas in sync with the leader as this node knows
// them: on the leader, those it heard from within the Raft lease;
// elsewhere all replicas.
func (p *Partition) InSync() []int32 {
	if p.group == nil || !p.group.IsLeader() {
		return p.replicas
	}
	in := p.group.InSync(p.replicas)
	if p.progress == nil {
		return in
	}
	// A replica being added is not in sync until the leader made it a
	// voter (reassign.go).
	out := in[:0:0]
	for _, r := range in {
		if _, tracked, _ := p.progress.progress(serverID(r)); !tracked {
			out = append(out, r)
		}
	}
	return out
}

// Appended is an append whose place in its partition is fixed: later
// appends land after it. The AppendResult says where the leader placed it
// (the offsets it will have once committed; for a retried idempotent batch,
// the original's). It is not yet committed: Wait says when it is.
type Appended struct {
	partition.AppendResult

	proposal *raftgroup.Proposal
}

// Append hands batches (one or more produced record batches, concatenated,
// modified in place and not retained) to the partition and returns once
// their place is fixed behind every earlier Append on it, without waiting
// for commit: Wait on the result does that. Appends called one after
// another land in that order, so a connection can pipeline its produce
// requests and wait for them in order, and the group coordinator can order
// its records under its lock and wait outside it.
//
// Errors are those of the leader step, before anything is proposed:
// NOT_LEADER_OR_FOLLOWER on a node that does not lead the partition, the
// *kerr.Error values of partition.Replica.Prepare (CorruptMessage,
// MessageTooLarge, OutOfOrderSequenceNumber, ...), or ctx's error if it is
// done already. Append proposes to the partition's Raft group
// (raftgroup.Group.Propose) and does not block on it.
//
// Acks: Kafka's acks=1 and acks=all both wait for commit (Wait): stored
// by a majority of the partition's replicas, so an acknowledged record is
// never lost to a leader change; acks=0 calls Append and does not wait.
func (p *Partition) Append(ctx context.Context, batches []byte) (Appended, error) {
	return p.propose(ctx, func(g *raftgroup.Group) (*raftgroup.Proposal, error) { return g.Propose(batches) })
}

// Wait blocks until the append is committed: by a majority of the
// partition's replicas and below the high watermark, so consumers see it.
// Errors are ctx's (the append may still commit later),
// NOT_LEADER_OR_FOLLOWER when leadership was lost first (it may or may
// not commit: an idempotent producer's retry is recognised), or
// partition.ErrClosed.
func (a Appended) Wait(ctx context.Context) error {
	_, err := a.proposal.Wait(ctx)
	return err
}

// Read appends whole committed batches from req.Offset to dst; see
// partition.Replica.Read.
func (p *Partition) Read(dst []byte, req partition.ReadRequest) (partition.ReadResult, error) {
	r, err := p.serving()
	if err != nil {
		return partition.ReadResult{}, err
	}
	res, err := r.Read(dst, req)
	return res, p.checkStorage(err)
}

// Offsets returns the partition's log start, last stable, high watermark
// and log end offsets while this node leads it; elsewhere (a follower, or
// no replica here) it reports zeros, so callers answering clients check
// leadership first (LocalOffsets reads a follower's replica).
func (p *Partition) Offsets() partition.Offsets {
	r, err := p.serving()
	if err != nil {
		return partition.Offsets{}
	}
	return r.Offsets()
}

// Watch registers w for high watermark advances until Unwatch: a fetch
// waiting for MinBytes waits on w.C. See partition.Replica.Watch.
func (p *Partition) Watch(w *partition.Waiter) {
	if p.replica != nil {
		p.replica.Watch(w)
	}
}

// Unwatch removes w; see partition.Replica.Unwatch.
func (p *Partition) Unwatch(w *partition.Waiter) {
	if p.replica != nil {
		p.replica.Unwatch(w)
	}
}

// OffsetForTimestamp returns the first committed record with a timestamp at
// or after ts (ListOffsets by time); see partition.Replica.OffsetForTimestamp.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	r, err := p.serving()
	if err != nil {
		return 0, 0, false, err
	}
	offset, timestamp, found, err = r.OffsetForTimestamp(ts)
	return offset, timestamp, found, p.checkStorage(err)
}

// MaxTimestamp returns the committed record with the largest timestamp
// (ListOffsets -3, KIP-734); see partition.Replica.MaxTimestamp.
func (p *Partition) MaxTimestamp() (offset, timestamp int64, found bool, err error) {
	r, err := p.serving()
	if err != nil {
		return 0, 0, false, err
	}
	offset, timestamp, found, err = r.MaxTimestamp()
	return offset, timestamp, found, p.checkStorage(err)
}

// EpochEndOffset answers OffsetForLeaderEpoch: the largest epoch at or below
// epoch and where it ends; see partition.Replica.EpochEndOffset.
func (p *Partition) EpochEndOffset(epoch int32) (leaderEpoch int32, endOffset int64, err error) {
	r, err := p.serving()
	if err != nil {
		return 0, 0, err
	}
	leaderEpoch, endOffset, err = r.EpochEndOffset(epoch)
	return leaderEpoch, endOffset, p.checkStorage(err)
}

// LeaderEpoch returns the partition's current leader epoch. Today this node
// leads every partition; with Raft it is the group's term.
// A partition with no replica on this node reports -1 (unknown).
func (p *Partition) LeaderEpoch() int32 {
	_, epoch := p.Leader()
	return epoch
}

// DeleteRecordsBefore moves the log start offset up to offset
// (DeleteRecords) and returns the new log start; see
// partition.Replica.DeleteRecordsBefore.
func (p *Partition) DeleteRecordsBefore(offset int64) (int64, error) {
	r, err := p.serving()
	if err != nil {
		return 0, err
	}
	start, err := r.DeleteRecordsBefore(offset)
	return start, p.checkStorage(err)
}

// Config returns the partition config in force (topic overrides over the
// broker defaults). Read-only: configs change through the cluster.
// A partition with no replica on this node reports the zero Config.
func (p *Partition) Config() partition.Config {
	if p.replica == nil {
		return partition.Config{}
	}
	return p.replica.Config()
}
