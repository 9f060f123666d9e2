package wire

import (
	"context"

	"github.com/sluice-io/sluice/replication"
)

// Cluster is what the wire layer needs of the cluster: brokers, topics and
// their partitions, admin operations and producer ids. *replication.Cluster
// implements it.
type Cluster interface {
	ClusterID() string
	NodeID() int32
	ControllerID() int32
	Brokers() []replication.Broker
	AutoCreateTopics() bool
	Topics() []*replication.Topic
	Topic(name string) (*replication.Topic, bool)
	TopicByID(id [16]byte) (*replication.Topic, bool)
	// Partition returns a partition or kerr.UnknownTopicOrPartition.
	Partition(topic string, index int32) (*replication.Partition, error)
	CreateTopic(ctx context.Context, req replication.CreateTopicRequest) (*replication.Topic, error)
	DeleteTopic(ctx context.Context, name string) error
	CreatePartitions(ctx context.Context, name string, count int32, validateOnly bool) error
	AllocateProducerID(ctx context.Context) (int64, error)
	DescribeTopicConfigs(name string) ([]replication.ConfigEntry, error)
	DescribeBrokerConfigs() []replication.ConfigEntry
	// AlterTopicConfigs replaces a topic's overrides (AlterConfigs);
	// IncrementalAlterTopicConfigs applies operations to them.
	AlterTopicConfigs(ctx context.Context, topic string, configs map[string]string, validateOnly bool) error
	IncrementalAlterTopicConfigs(ctx context.Context, topic string, ops []replication.ConfigOp, validateOnly bool) error
	// AlterBrokerConfigs and IncrementalAlterBrokerConfigs do the same for
	// the dynamic configs of a BROKER resource ("" or this node's id).
	AlterBrokerConfigs(ctx context.Context, broker string, configs map[string]string, validateOnly bool) error
	IncrementalAlterBrokerConfigs(ctx context.Context, broker string, ops []replication.ConfigOp, validateOnly bool) error
}

var _ Cluster = (*replication.Cluster)(nil)
