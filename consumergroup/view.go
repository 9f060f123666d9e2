package consumergroup

// ViewCluster returns c as a Cluster, for other coordinators built on the
// same internal-topic pattern (package consumergroup/txn) that take any
// ClusterOf as New does.
func ViewCluster[T TopicOf[P], P Partition](c ClusterOf[T, P]) Cluster {
	return viewCluster(c)
}

// PartitionFor returns the partition of an internal topic with
// partitions partitions that holds key, as Kafka computes it for groups
// and transactional ids: Utils.abs(Java String.hashCode(key)) mod
// partitions. partitions must be positive.
func PartitionFor(key string, partitions int32) int32 {
	return partitionFor(key, partitions)
}
