package replication

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
)

// TimestampAt returns the first committed record at or after offset and its
// timestamp: the record a group's committed offset points at, whose age is
// the group's time lag. See partition.Replica.TimestampAt.
func (p *Partition) TimestampAt(offset int64) (recordOffset, timestamp int64, found bool, err error) {
	if p.replica == nil {
		return 0, 0, false, kerr.NotLeaderForPartition
	}
	return p.replica.TimestampAt(offset)
}

// LocalOffsets returns the offsets of this node's replica of the
// partition, led here or not, for metrics and lag: on a follower the high
// watermark is what it knows committed, at most a heartbeat behind the
// leader's. Not ok when no replica is on this node. Clients get offsets
// only from the leader (Offsets).
func (p *Partition) LocalOffsets() (partition.Offsets, bool) {
	if p.replica == nil {
		return partition.Offsets{}, false
	}
	return p.replica.Offsets(), true
}

// LogStats returns the size in bytes and the segment count of the
// partition's local log, for metrics; see partition.Replica.LogStats. A
// partition with no replica on this node reports zeros.
func (p *Partition) LogStats() log.Stats {
	if p.replica == nil {
		return log.Stats{}
	}
	return p.replica.LogStats()
}
