package consumergroup

import (
	"context"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
)

// Cluster is what the coordinator needs of the cluster: this broker (the
// coordinator FindCoordinator names), the __consumer_offsets topic (created
// on first start) and handles of its partitions, and whether a committed
// topic partition exists.
//
// *replication.Cluster is not a Cluster but a ClusterOf[*replication.Topic,
// *replication.Partition]: Go has no covariant method results. New takes
// any ClusterOf and sees it as a Cluster.
type Cluster = ClusterOf[Topic, Partition]

// ClusterOf is Cluster with an implementation's own topic type T and
// partition type P, which must satisfy the coordinator's Topic and
// Partition.
type ClusterOf[T Topic, P Partition] interface {
	NodeID() int32
	Brokers() []replication.Broker
	Topic(name string) (T, bool)
	// CreateTopic errors with kerr.TopicAlreadyExists when another caller
	// created the topic first.
	CreateTopic(ctx context.Context, req replication.CreateTopicRequest) (T, error)
	// Partition returns a partition or kerr.UnknownTopicOrPartition.
	Partition(topic string, index int32) (P, error)
}

// Topic is what the coordinator reads of __consumer_offsets.
type Topic interface {
	PartitionCount() int32
}

// Partition is the coordinator's handle of a __consumer_offsets partition:
// it appends records (in the order of the in-memory changes, under
// Coordinator.mu) and waits for their commit outside the lock, and reads
// the partition back on load.
type Partition interface {
	Append(ctx context.Context, batches []byte) (replication.Appended, error)
	Read(dst []byte, req partition.ReadRequest) (partition.ReadResult, error)
	Offsets() partition.Offsets
}

// clusterView is a ClusterOf seen as a Cluster.
type clusterView[T Topic, P Partition] struct {
	ClusterOf[T, P]
}

// viewCluster returns c as a Cluster.
func viewCluster[T Topic, P Partition](c ClusterOf[T, P]) Cluster {
	if c, ok := any(c).(Cluster); ok {
		return c
	}
	return clusterView[T, P]{c}
}

func (v clusterView[T, P]) Topic(name string) (Topic, bool) {
	t, ok := v.ClusterOf.Topic(name)
	if !ok {
		return nil, false
	}
	return t, true
}

func (v clusterView[T, P]) CreateTopic(ctx context.Context, req replication.CreateTopicRequest) (Topic, error) {
	t, err := v.ClusterOf.CreateTopic(ctx, req)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (v clusterView[T, P]) Partition(topic string, index int32) (Partition, error) {
	p, err := v.ClusterOf.Partition(topic, index)
	if err != nil {
		return nil, err
	}
	return p, nil
}
