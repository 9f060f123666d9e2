package consumergroup

import (
	"context"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
)

// Cluster is what the coordinator needs of the cluster: this broker and
// every broker's address (FindCoordinator names the leader of the group's
// partition), the __consumer_offsets topic (created on first start) and
// handles of its partitions, and whether a committed topic partition
// exists.
//
// *replication.Cluster is not a Cluster but a ClusterOf[*replication.Topic,
// *replication.Partition]: Go has no covariant method results. New takes
// any ClusterOf and sees it as a Cluster.
type Cluster = ClusterOf[Topic, Partition]

// ClusterOf is Cluster with an implementation's own topic type T and
// partition type P, which must satisfy the coordinator's TopicOf[P] and
// Partition.
type ClusterOf[T TopicOf[P], P Partition] interface {
	NodeID() int32
	// Brokers lists the registered brokers with their Kafka addresses.
	Brokers() []replication.Broker
	Topic(name string) (T, bool)
	// CreateTopic errors with kerr.TopicAlreadyExists when another caller
	// created the topic first.
	CreateTopic(ctx context.Context, req replication.CreateTopicRequest) (T, error)
}

// Topic is a topic as the coordinator sees it.
type Topic = TopicOf[Partition]

// TopicOf is what the coordinator reads of a topic: its partition count
// (to check a committed partition exists) and, for __consumer_offsets,
// the handle of each partition, whether or not this node holds a replica
// of it (Leader still says who leads).
type TopicOf[P Partition] interface {
	// ID is the topic id (share group assignments name topics by id).
	ID() [16]byte
	PartitionCount() int32
	// Partition returns partition index, in [0, PartitionCount()).
	Partition(index int32) P
}

// Partition is the coordinator's handle of a __consumer_offsets partition:
// who leads it and in which epoch (the coordinator of its groups is its
// leader), appends of records (in the order of the in-memory changes,
// under Coordinator.mu) whose commit is awaited outside the lock, and
// reads of the partition on load. Append, Read and Offsets answer
// kerr.NotLeaderForPartition (Offsets: zeros) on a node that does not
// lead the partition.
type Partition interface {
	// Leader returns the node leading the partition and its leader epoch;
	// node -1 when none is known. On this node, node is this node's id
	// only once it may serve the partition: every committed record is
	// then below the high watermark.
	Leader() (node int32, epoch int32)
	Append(ctx context.Context, batches []byte) (replication.Appended, error)
	// AppendAsCoordinatorVerified appends transactional offset commits
	// (TxnOffsetCommit): transactional batches without sequence numbers,
	// verified with guard (the partition's StartTxnVerification, then
	// the transaction coordinator): one that would begin its producer's
	// transaction after a marker ended the verification is
	// INVALID_TXN_STATE, with nothing stored.
	AppendAsCoordinatorVerified(ctx context.Context, batches []byte, guard uint64) (replication.Appended, error)
	Read(dst []byte, req partition.ReadRequest) (partition.ReadResult, error)
	Offsets() partition.Offsets
}

// clusterView is a ClusterOf seen as a Cluster.
type clusterView[T TopicOf[P], P Partition] struct {
	ClusterOf[T, P]
}

// topicView is a TopicOf[P] seen as a Topic.
type topicView[P Partition] struct {
	TopicOf[P]
}

func (v topicView[P]) Partition(index int32) Partition { return v.TopicOf.Partition(index) }

// viewCluster returns c as a Cluster.
func viewCluster[T TopicOf[P], P Partition](c ClusterOf[T, P]) Cluster {
	if c, ok := any(c).(Cluster); ok {
		return c
	}
	return clusterView[T, P]{c}
}

// viewTopic returns t as a Topic.
func viewTopic[P Partition](t TopicOf[P]) Topic {
	if t, ok := any(t).(Topic); ok {
		return t
	}
	return topicView[P]{t}
}

func (v clusterView[T, P]) Topic(name string) (Topic, bool) {
	t, ok := v.ClusterOf.Topic(name)
	if !ok {
		return nil, false
	}
	return viewTopic[P](t), true
}

func (v clusterView[T, P]) CreateTopic(ctx context.Context, req replication.CreateTopicRequest) (Topic, error) {
	t, err := v.ClusterOf.CreateTopic(ctx, req)
	if err != nil {
		return nil, err
	}
	return viewTopic[P](t), nil
}
