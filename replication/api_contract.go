package replication

// CONTRACT FILE — replaced by the real implementation (cluster.go).

import (
	"context"

	"github.com/sluice-io/sluice/log"
)

// Cluster is this node's view of the cluster: brokers, topics and their
// partition replicas, and producer id allocation.
type Cluster struct{}

// Open loads the topic metadata under cfg.DataDir/meta and opens every
// partition replica under cfg.DataDir/topics.
func Open(cfg Config, opts Options) (*Cluster, error) { panic("contract") }

// Close closes every replica (each log is synced and marked clean) and the
// flusher.
func (c *Cluster) Close(ctx context.Context) error { panic("contract") }

// FlushStats returns the node's flusher counters (bench and metrics).
func (c *Cluster) FlushStats() log.FlushStats { panic("contract") }
