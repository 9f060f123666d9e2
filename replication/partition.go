package replication

import (
	"context"

	"github.com/sluice-io/sluice/partition"
)

// Partition is the cluster's handle of one partition: what the layers above
// (wire, consumergroup) may do with it, and nothing more. The replica stays
// behind it: they cannot close, delete, truncate or reconfigure it, nor set
// its leader epoch. Each consumer declares the subset it uses as its own
// interface (wire.Partition, consumergroup.Partition).
//
// Today the handle wraps the local replica and this node leads every
// partition; with a Raft group per partition, Append becomes a proposal and
// leadership follows the group, behind the same methods.
type Partition struct {
	// Topic and Index name the partition.
	Topic string
	Index int32

	replica *partition.Replica
}

// Appended is an append whose place in its partition is fixed: later
// appends land after it. The AppendResult says where the leader placed it
// (the offsets it will have once committed; for a retried idempotent batch,
// the original's). It is not yet committed: Wait says when it is.
type Appended struct {
	partition.AppendResult

	replica *partition.Replica
}

// Append hands batches (one or more produced record batches, concatenated,
// modified in place and not retained) to the partition and returns once
// their place is fixed behind every earlier Append on it, without waiting
// for commit: Wait on the result does that. Appends called one after
// another land in that order, so a connection can pipeline its produce
// requests and wait for them in order, and the group coordinator can order
// its records under its lock and wait outside it.
//
// Errors are those of the leader step, before anything is stored: the
// *kerr.Error values of partition.Replica.Append (CorruptMessage,
// MessageTooLarge, OutOfOrderSequenceNumber, ...), partition.ErrClosed, or
// a storage failure; or ctx's error if it is done already. ctx bounds the
// hand-over; today it is a local append that does not block.
//
// Acks: Kafka's acks=1 and acks=all both wait for commit (Wait), so an
// acknowledged record is never lost to a leader change once replicated;
// acks=0 calls Append and does not wait. Today commit means durable on this
// node (fsynced, or written under a flush interval); with a Raft group per
// partition, Append becomes the proposal and commit a majority of the
// partition's replicas.
func (p *Partition) Append(ctx context.Context, batches []byte) (Appended, error) {
	if err := ctx.Err(); err != nil {
		return Appended{}, err
	}
	res, err := p.replica.Append(batches)
	if err != nil {
		return Appended{}, err
	}
	return Appended{AppendResult: res, replica: p.replica}, nil
}

// Wait blocks until the append is committed: durable and below the high
// watermark, so consumers see it. Errors are ctx's, or partition.ErrClosed
// when the partition closed first; the append may still commit later.
func (a Appended) Wait(ctx context.Context) error {
	return a.replica.WaitCommitted(ctx, a.LastOffset)
}

// Read appends whole committed batches from req.Offset to dst; see
// partition.Replica.Read.
func (p *Partition) Read(dst []byte, req partition.ReadRequest) (partition.ReadResult, error) {
	return p.replica.Read(dst, req)
}

// Offsets returns the partition's log start, last stable, high watermark
// and log end offsets.
func (p *Partition) Offsets() partition.Offsets { return p.replica.Offsets() }

// Watch registers w for high watermark advances until Unwatch: a fetch
// waiting for MinBytes waits on w.C. See partition.Replica.Watch.
func (p *Partition) Watch(w *partition.Waiter) { p.replica.Watch(w) }

// Unwatch removes w; see partition.Replica.Unwatch.
func (p *Partition) Unwatch(w *partition.Waiter) { p.replica.Unwatch(w) }

// OffsetForTimestamp returns the first committed record with a timestamp at
// or after ts (ListOffsets by time); see partition.Replica.OffsetForTimestamp.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	return p.replica.OffsetForTimestamp(ts)
}

// MaxTimestamp returns the committed record with the largest timestamp
// (ListOffsets -3, KIP-734); see partition.Replica.MaxTimestamp.
func (p *Partition) MaxTimestamp() (offset, timestamp int64, found bool, err error) {
	return p.replica.MaxTimestamp()
}

// EpochEndOffset answers OffsetForLeaderEpoch: the largest epoch at or below
// epoch and where it ends; see partition.Replica.EpochEndOffset.
func (p *Partition) EpochEndOffset(epoch int32) (leaderEpoch int32, endOffset int64, err error) {
	return p.replica.EpochEndOffset(epoch)
}

// LeaderEpoch returns the partition's current leader epoch. Today this node
// leads every partition; with Raft it is the group's term.
func (p *Partition) LeaderEpoch() int32 { return p.replica.LeaderEpoch() }

// DeleteRecordsBefore moves the log start offset up to offset
// (DeleteRecords) and returns the new log start; see
// partition.Replica.DeleteRecordsBefore.
func (p *Partition) DeleteRecordsBefore(offset int64) (int64, error) {
	return p.replica.DeleteRecordsBefore(offset)
}

// Config returns the partition config in force (topic overrides over the
// broker defaults). Read-only: configs change through the cluster.
func (p *Partition) Config() partition.Config { return p.replica.Config() }

// SetLeaderEpoch sets the leader epoch of a partition, as a leadership
// change does: appends after it carry the epoch and OffsetForLeaderEpoch
// answers with it. On a single node nothing changes leadership, so only
// tests call it; with Raft the partition's group sets it from its term.
// Errors are kerr.UnknownTopicOrPartition.
func (c *Cluster) SetLeaderEpoch(topic string, index int32, epoch int32) error {
	p, err := c.Partition(topic, index)
	if err != nil {
		return err
	}
	p.replica.SetLeaderEpoch(epoch)
	return nil
}
