package main

import (
	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/wire"
)

// serve passes the concrete cluster to the layers above it, which declare
// what they need of it as their own interfaces; these assertions say at
// compile time, next to the assembly, which concrete type satisfies which.
var (
	_ wire.Partition                                                      = (*replication.Partition)(nil)
	_ wire.TopicOf[*replication.Partition]                                = (*replication.Topic)(nil)
	_ wire.ClusterOf[*replication.Topic, *replication.Partition]          = (*replication.Cluster)(nil)
	_ consumergroup.Partition                                             = (*replication.Partition)(nil)
	_ consumergroup.TopicOf[*replication.Partition]                       = (*replication.Topic)(nil)
	_ consumergroup.ClusterOf[*replication.Topic, *replication.Partition] = (*replication.Cluster)(nil)
)
