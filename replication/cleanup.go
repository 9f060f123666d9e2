package replication

import (
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/cleaner"
)

// cleanerTargets lists every replica on this node (not the partitions
// held only by others) for the cleaner, topics
// by name. It takes mu shared and releases it before returning: the
// cleaner calls the replicas without it.
func (c *Cluster) cleanerTargets() []cleaner.Target {
	var targets []cleaner.Target
	for _, t := range c.Topics() {
		compacted := t.config.CleanupPolicy&partition.CleanupCompact != 0
		for _, p := range t.partitions {
			if p.replica == nil {
				continue // held by other nodes
			}
			targets = append(targets, cleaner.Target{Topic: t.name, Partition: p.Index, Compacted: compacted, Replica: p.replica})
		}
	}
	return targets
}

// CleanupStats returns what retention and compaction removed since Open.
// Safe for concurrent use.
func (c *Cluster) CleanupStats() cleaner.Stats { return c.cleaner.Stats() }
