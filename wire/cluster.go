package wire

import (
	"context"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/replication/configs"
	"github.com/sluice-io/sluice/replication/quota"
)

// Cluster is what the wire layer needs of the cluster: brokers, topics and
// their partitions, admin operations and producer ids. Handlers see topics
// and partitions only through wire's Topic and Partition.
//
// *replication.Cluster is not a Cluster but a ClusterOf[*replication.Topic,
// *replication.Partition]: Go has no covariant method results, so a method
// returning *replication.Topic does not satisfy one returning Topic.
// NewServer takes any ClusterOf and sees it as a Cluster.
type Cluster = ClusterOf[Topic, Partition]

// Topic is what the wire layer reads of a topic.
type Topic = TopicOf[Partition]

// ClusterOf is Cluster with an implementation's own topic type T and
// partition type P, which must satisfy wire's Topic and Partition.
type ClusterOf[T TopicOf[P], P Partition] interface {
	ClusterID() string
	NodeID() int32
	ControllerID() int32
	Brokers() []replication.Broker
	AutoCreateTopics() bool
	Topics() []T
	Topic(name string) (T, bool)
	TopicByID(id [16]byte) (T, bool)
	// Partition returns a partition or kerr.UnknownTopicOrPartition.
	Partition(topic string, index int32) (P, error)
	CreateTopic(ctx context.Context, req replication.CreateTopicRequest) (T, error)
	DeleteTopic(ctx context.Context, name string) error
	CreatePartitions(ctx context.Context, name string, count int32, validateOnly bool) error
	// AllocateProducerID hands out a producer id; a node that is not the
	// metadata leader gets its blocks of ids from it through remote.
	AllocateProducerID(ctx context.Context, remote replication.ProducerIDBlockFunc) (int64, error)
	// AllocateProducerIDBlock reserves a block of producer ids for a
	// registered node, on the metadata leader (AllocateProducerIds).
	AllocateProducerIDBlock(ctx context.Context, node int32) (replication.ProducerIDBlock, error)
	// RecordLeaders records elections a node reports (AlterPartition), on
	// the metadata leader.
	RecordLeaders(ctx context.Context, from int32, changes []replication.LeaderChange) (int, error)
	// WaitView waits until cond holds on this node's view of the
	// metadata: a forwarded change is awaited here so.
	WaitView(ctx context.Context, cond func() bool) error
	// ClientQuotas returns the client quotas in force (never modified).
	ClientQuotas() quota.Set
	// AlterClientQuotas validates and applies quota changes (only the
	// metadata leader: elsewhere kerr.NotController).
	AlterClientQuotas(ctx context.Context, changes []quota.Change, validateOnly bool) error
	DescribeTopicConfigs(name string) ([]configs.Entry, error)
	DescribeBrokerConfigs() []configs.Entry
	// AlterTopicConfigs replaces a topic's overrides (AlterConfigs);
	// IncrementalAlterTopicConfigs applies operations to them.
	AlterTopicConfigs(ctx context.Context, topic string, configs map[string]string, validateOnly bool) error
	IncrementalAlterTopicConfigs(ctx context.Context, topic string, ops []configs.Op, validateOnly bool) error
	// AlterBrokerConfigs and IncrementalAlterBrokerConfigs do the same for
	// the dynamic configs of a BROKER resource ("" or this node's id).
	AlterBrokerConfigs(ctx context.Context, broker string, configs map[string]string, validateOnly bool) error
	IncrementalAlterBrokerConfigs(ctx context.Context, broker string, ops []configs.Op, validateOnly bool) error
	// DescribeGroupConfigs, AlterGroupConfigs and
	// IncrementalAlterGroupConfigs do the same for a GROUP resource (share
	// group configs, any group id).
	DescribeGroupConfigs(group string) ([]configs.Entry, error)
	AlterGroupConfigs(ctx context.Context, group string, configs map[string]string, validateOnly bool) error
	IncrementalAlterGroupConfigs(ctx context.Context, group string, ops []configs.Op, validateOnly bool) error
	// Reassigner: moving replicas (reassign.go).
	Reassigner
}

// TopicOf is Topic with an implementation's own partition type P. A topic
// value is a snapshot: its partition count does not change under a reader.
type TopicOf[P Partition] interface {
	Name() string
	ID() [16]byte
	Internal() bool
	PartitionCount() int32
	// Partition returns partition index, in [0, PartitionCount()).
	Partition(index int32) P
}

// Partition is the wire layer's handle of one partition: append and wait
// for commit (Produce), read and wait for data (Fetch), offsets and
// timestamps (ListOffsets), leader epochs (fencing, Metadata,
// OffsetForLeaderEpoch) and DeleteRecords. It cannot reach the replica
// behind it.
type Partition interface {
	// Append fixes the batches' place in the partition and returns where
	// they land; Wait on the result returns once they are committed.
	// acks=1 and acks=all wait, acks=0 does not.
	Append(ctx context.Context, batches []byte) (replication.Appended, error)
	Read(dst []byte, req partition.ReadRequest) (partition.ReadResult, error)
	Offsets() partition.Offsets
	Watch(w *partition.Waiter)
	Unwatch(w *partition.Waiter)
	OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error)
	MaxTimestamp() (offset, timestamp int64, found bool, err error)
	EpochEndOffset(epoch int32) (leaderEpoch int32, endOffset int64, err error)
	LeaderEpoch() int32
	// Leader returns the node leading the partition and its leader epoch
	// (-1 when no leader is known); Replicas the nodes holding it,
	// preferred leader first; InSync those in sync with the leader.
	Leader() (node int32, epoch int32)
	Replicas() []int32
	InSync() []int32
	DeleteRecordsBefore(offset int64) (int64, error)
	// AppendTxnMarker writes a transaction marker as the partition's
	// leader (WriteTxnMarkers); Wait on the result waits for commit.
	AppendTxnMarker(ctx context.Context, m partition.TxnMarker) (replication.Appended, error)
	// Producers returns the active producers (DescribeProducers).
	Producers() ([]partition.ProducerState, error)
	// StartTxnVerification starts the verification of a transactional
	// produce as the leader: the guard for AppendVerified, 0 when the
	// producer's transaction is under way here already.
	StartTxnVerification(producerID int64, epoch int16, bumpsEpoch bool) (uint64, error)
	// AppendVerified is Append for a transactional produce verified with
	// guard: one that would begin its transaction after a marker ended
	// the verification is INVALID_TXN_STATE.
	AppendVerified(ctx context.Context, batches []byte, guard uint64) (replication.Appended, error)
}

// clusterView is a ClusterOf seen as a Cluster: its lookups return T and P
// as wire's Topic and Partition.
type clusterView[T TopicOf[P], P Partition] struct {
	ClusterOf[T, P]
}

// viewCluster returns c as a Cluster.
func viewCluster[T TopicOf[P], P Partition](c ClusterOf[T, P]) Cluster {
	if c, ok := any(c).(Cluster); ok {
		return c
	}
	return clusterView[T, P]{c}
}

func (v clusterView[T, P]) Topics() []Topic {
	ts := v.ClusterOf.Topics()
	out := make([]Topic, len(ts))
	for i, t := range ts {
		out[i] = topicView[T, P]{t}
	}
	return out
}

func (v clusterView[T, P]) Topic(name string) (Topic, bool) {
	t, ok := v.ClusterOf.Topic(name)
	if !ok {
		return nil, false
	}
	return topicView[T, P]{t}, true
}

func (v clusterView[T, P]) TopicByID(id [16]byte) (Topic, bool) {
	t, ok := v.ClusterOf.TopicByID(id)
	if !ok {
		return nil, false
	}
	return topicView[T, P]{t}, true
}

func (v clusterView[T, P]) Partition(topic string, index int32) (Partition, error) {
	p, err := v.ClusterOf.Partition(topic, index)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (v clusterView[T, P]) CreateTopic(ctx context.Context, req replication.CreateTopicRequest) (Topic, error) {
	t, err := v.ClusterOf.CreateTopic(ctx, req)
	if err != nil {
		return nil, err
	}
	return topicView[T, P]{t}, nil
}

// topicView is a T seen as a Topic. It holds T itself, not a TopicOf
// interface, so that a pointer T makes it pointer-shaped: boxing it in a
// Topic on every lookup does not allocate.
type topicView[T TopicOf[P], P Partition] struct {
	t T
}

func (v topicView[T, P]) Name() string                    { return v.t.Name() }
func (v topicView[T, P]) ID() [16]byte                    { return v.t.ID() }
func (v topicView[T, P]) Internal() bool                  { return v.t.Internal() }
func (v topicView[T, P]) PartitionCount() int32           { return v.t.PartitionCount() }
func (v topicView[T, P]) Partition(index int32) Partition { return v.t.Partition(index) }
