package consumergroup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication"
)

// Records in __consumer_offsets use Kafka's own formats (kmsg has them), so
// tools that read that topic understand Sluice's too:
//
//	offset commit   key   OffsetCommitKey v1   (group, topic, partition)
//	                value OffsetCommitValue v3 (offset, leader epoch,
//	                                            metadata, commit time)
//	group metadata  key   GroupMetadataKey v2  (group)
//	                value GroupMetadataValue v3 (protocol type, generation,
//	                                            protocol, leader, members
//	                                            with subscriptions and
//	                                            assignments)
//
// A null value is a tombstone: the offset or group is deleted, and
// compaction eventually removes both.

// kv is one record to write.
type kv struct {
	key, value []byte // value nil: tombstone
}

func offsetKey(group string, tp topicPartition) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version, k.Group, k.Topic, k.Partition = 1, group, tp.topic, tp.partition
	return k.AppendTo(nil)
}

func offsetValue(o committed) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version, v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = 3, o.offset, o.leaderEpoch, o.metadata, o.commitTimestamp
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version, k.Group = 2, group
	return k.AppendTo(nil)
}

// groupValue encodes a group's generation, protocol and members.
func groupValue(g *group) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version, v.ProtocolType, v.Generation = 3, g.protocolType, g.generation
	v.CurrentStateTimestamp = time.Now().UnixMilli()
	if g.protocol != "" {
		protocol, leader := g.protocol, g.leader
		v.Protocol, v.Leader = &protocol, &leader
	}
	for _, m := range g.members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID, vm.ClientID, vm.ClientHost = m.id, m.instanceID, m.clientID, m.host
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription, vm.Assignment = m.metadataFor(g.protocol), m.assignment
		v.Members = append(v.Members, vm)
	}
	return v.AppendTo(nil)
}

// encodeBatch builds one uncompressed magic-2 batch of records stamped
// with the current time; the broker assigns its offsets on append.
func encodeBatch(records []kv) []byte {
	now := time.Now().UnixMilli()
	var b record.Builder
	for _, r := range records {
		b.Add(now, r.key, r.value)
	}
	raw, err := b.AppendTo(nil)
	if err != nil {
		// Only an empty batch fails uncompressed: a caller's bug.
		panic(fmt.Sprintf("consumergroup: encode %d records: %v", len(records), err))
	}
	return raw
}

// groupBatchLocked returns the partition and batch that store a group's
// current metadata.
func (c *Coordinator) groupBatchLocked(g *group) (int32, []byte) {
	return c.partitionFor(g.id), encodeBatch([]kv{{key: groupKey(g.id), value: groupValue(g)}})
}

// persistGroupAsync stores a group's metadata without making anyone wait:
// used when a generation ends empty and when a static member is replaced.
// c.mu is held. The record is durable with the next sync.
func (c *Coordinator) persistGroupAsync(g *group) {
	p, batch := c.groupBatchLocked(g)
	if _, err := c.appendLocked(p, batch); err != nil {
		c.logger.Warn("store group metadata", zapGroup(g.id), zapErr(err))
	}
}

// written is where an appended batch landed.
type written struct {
	appended   replication.Appended
	base, last int64
	// pending is set by persistShareGroupLocked when it appended a
	// record and counted it in Coordinator.wg (waitWritten releases it).
	pending bool
}

// appendLocked appends a batch to a __consumer_offsets partition. c.mu is
// held: records reach the log in the order of the in-memory changes they
// describe, so a reload rebuilds exactly that state (a delete's tombstones
// never land before a commit it saw, nor a commit after a delete it
// followed). The batch is not yet durable: see wait.
//
// The append is refused with NOT_COORDINATOR unless this node leads the
// partition in the epoch its groups were loaded in: state read in one
// epoch is never written in another.
func (c *Coordinator) appendLocked(p int32, batch []byte) (written, error) {
	part := c.handle(p)
	epoch, loaded := c.ownedEpochLocked(p)
	if part == nil || !loaded {
		return written{}, kerr.NotCoordinator
	}
	if node, now := part.Leader(); node != c.self || now != epoch {
		return written{}, kerr.NotCoordinator
	}
	res, err := part.Append(context.Background(), batch)
	if err != nil {
		return written{}, fmt.Errorf("append to %s-%d: %w", OffsetsTopic, p, err)
	}
	return written{appended: res, base: res.BaseOffset, last: res.LastOffset}, nil
}

// wait blocks until w is committed (durable) or ctx ends. It must be
// called without c.mu.
func (w written) wait(ctx context.Context) error {
	return w.appended.Wait(ctx)
}

// storeErrorCode turns a failed store into the code clients retry on.
func storeErrorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, partition.ErrClosed), errors.Is(err, kerr.NotLeaderForPartition):
		// The partition's leadership moved: so did its groups.
		return kerr.NotCoordinator.Code
	case errors.Is(err, kerr.KafkaStorageError), log.IsStorageError(err):
		// The offsets partition's disk failed or is below its free-space
		// threshold: as Kafka does, NOT_COORDINATOR, which clients of
		// every API here retry (KAFKA_STORAGE_ERROR is a produce code
		// they do not expect from a coordinator).
		return kerr.NotCoordinator.Code
	case errors.As(err, &ke):
		return ke.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

func zapGroup(id string) zap.Field    { return zap.String("group", id) }
func zapMember(id string) zap.Field   { return zap.String("member", id) }
func zapGeneration(g int32) zap.Field { return zap.Int32("generation", g) }
func zapErr(err error) zap.Field      { return zap.Error(err) }
