package replication

import (
	"sort"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/replication/meta"
)

// FailedReplica is a partition replica on this node whose storage failed:
// it left its Raft group (it neither leads nor votes) until the node
// restarts.
type FailedReplica struct {
	Topic     string
	Partition int32
	// Err says what failed: the file and the OS error.
	Err error
}

// checkStorage passes err through; when it is a failed disk operation on
// the replica's files (log.IsStorageError) the replica leaves its Raft
// group first, as after a failed write: a leader that cannot read its log
// must not keep answering KAFKA_STORAGE_ERROR to every fetch, so clients
// that refresh their metadata find another replica leading. Kafka takes
// a log dir offline on any I/O error the same way.
func (p *Partition) checkStorage(err error) error {
	if err != nil && p.group != nil && log.IsStorageError(err) {
		p.group.Fail(err)
	}
	return err
}

// Space returns what the last free-space check saw of the data dir's
// filesystem and whether appends are refused for it. Safe for concurrent
// use; takes no lock.
func (c *Cluster) Space() SpaceState { return *c.space.state.Load() }

// FailedReplicas returns this node's replicas whose storage failed,
// sorted by topic and partition.
func (c *Cluster) FailedReplicas() []FailedReplica {
	c.mu.RLock()
	var out []FailedReplica
	for ref, p := range c.replicas {
		if p.group == nil {
			continue
		}
		if err := p.group.Failed(); err != nil {
			out = append(out, failedReplica(ref, err))
		}
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

func failedReplica(ref meta.PartitionRef, err error) FailedReplica {
	return FailedReplica{Topic: ref.Topic, Partition: ref.Partition, Err: err}
}
