package consumergroup

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/replication"
)

// EnsureInternalTopic returns the internal compacted topic name of
// cluster, creating it with partitions partitions and replicationFactor
// replicas (capped at the live nodes) when it does not exist yet: a
// coordinator's storage (__consumer_offsets, __transaction_state,
// __share_group_state). Another node creating it at the same time is no
// error.
func EnsureInternalTopic(cluster Cluster, name string, partitions int32, replicationFactor int16) (Topic, error) {
	if t, ok := cluster.Topic(name); ok {
		return t, nil
	}
	t, err := cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{
		Name:                 name,
		Partitions:           partitions,
		ReplicationFactor:    replicationFactor,
		CapReplicationFactor: true,
		Internal:             true,
		Configs:              map[string]string{"cleanup.policy": "compact"},
	})
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	if t == nil {
		t, _ = cluster.Topic(name)
	}
	if t == nil {
		return nil, fmt.Errorf("%s not in this node's view after its creation: %w", name, err)
	}
	return t, nil
}
