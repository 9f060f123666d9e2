package wire

// DescribeLogDirs (key 35), versions 0-4.
//
// Describes this node's one log directory, <data.dir>/topics: each
// partition replica stored on this node with the bytes of its segments'
// .log files, and (v4) the size of the filesystem holding it and the bytes
// available there, as the free-space check (storage.min.free.bytes, run
// once a second) last read them; -1 before it first succeeded. A request
// naming topics gets the named partitions that are stored here: unknown
// topics and partitions held by other nodes are left out, as Kafka leaves
// them out. kadm.DescribeAllLogDirs, kafka-log-dirs.sh and `sluice cluster
// status` use it; a client sends it to each broker.
//
// OffsetLag is how far the replica's log end offset is below its high
// watermark (0 on a leader), as Kafka reports it for a current replica.
// IsFuture is always false: Sluice never moves a replica between
// directories (no AlterReplicaLogDirs).
//
// Deviations: one log directory per node. Its ErrorCode stays 0 while
// appends are refused for lack of space: the directory is not offline
// (reads go on); a client compares UsableBytes with the broker's
// storage.min.free.bytes (DescribeConfigs). Size counts the .log files
// only, not the indexes. The node's replicas whose disk failed are listed
// while they stay open.
//
// Version notes: v1 is v0; v2 is flexible (KIP-482); v3 adds the top-level
// ErrorCode; v4 adds TotalBytes and UsableBytes (KIP-827).

import (
	"context"
	"path/filepath"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/replication"
)

// logDirCluster is the capability DescribeLogDirs needs of the cluster
// beyond Cluster: where it stores data and what the last free-space check
// saw. *replication.Cluster has it; a cluster without it has no log
// directory to describe.
type logDirCluster interface {
	Space() replication.SpaceState
}

// logDirPartition is the capability DescribeLogDirs needs of a partition:
// its local log's size. A partition with no local segment is not stored
// on this node. *replication.Partition has it.
type logDirPartition interface {
	LogStats() log.Stats
}

var (
	_ logDirCluster   = (*replication.Cluster)(nil)
	_ logDirPartition = (*replication.Partition)(nil)
)

// implementation returns the cluster a view adapts, so that handlers can
// look for optional capabilities of the value NewServer was given.
func (v clusterView[T, P]) implementation() any { return v.ClusterOf }

// clusterImplementation returns the value NewServer was given.
func (s *Server) clusterImplementation() any {
	if v, ok := s.cluster.(interface{ implementation() any }); ok {
		return v.implementation()
	}
	return s.cluster
}

func handleDescribeLogDirs(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dirs, ok := s.clusterImplementation().(logDirCluster)
	if !ok {
		return reply{resp: resp}
	}
	space := dirs.Space()
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = filepath.Join(space.Dir, "topics")
	dir.TotalBytes, dir.UsableBytes = -1, -1
	if !space.Checked.IsZero() && space.TotalBytes > 0 {
		dir.TotalBytes, dir.UsableBytes = clampInt64(space.TotalBytes), clampInt64(space.FreeBytes)
	}

	// nil Topics asks for every partition; otherwise only those named.
	var wanted map[string][]int32
	if req.Topics != nil {
		wanted = make(map[string][]int32, len(req.Topics))
		for _, t := range req.Topics {
			wanted[t.Topic] = append(wanted[t.Topic], t.Partitions...)
		}
	}
	// A copy: the cluster's slice is not ours to reorder.
	topics := slices.Clone(s.cluster.Topics())
	slices.SortFunc(topics, func(a, b Topic) int { return strings.Compare(a.Name(), b.Name()) })
	for _, t := range topics {
		var indexes []int32
		if wanted != nil {
			named, ok := wanted[t.Name()]
			if !ok {
				continue
			}
			indexes = slices.Compact(slices.Sorted(slices.Values(named)))
		} else {
			for i := range t.PartitionCount() {
				indexes = append(indexes, i)
			}
		}
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = t.Name()
		for _, i := range indexes {
			if i < 0 || i >= t.PartitionCount() {
				continue
			}
			p := t.Partition(i)
			local, ok := p.(logDirPartition)
			if !ok {
				continue
			}
			st := local.LogStats()
			if st.Segments == 0 {
				continue // not stored on this node
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = i, st.Bytes
			o := p.Offsets()
			rp.OffsetLag = max(o.HighWatermark-o.LogEnd, 0)
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, rt)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return reply{resp: resp}
}

// clampInt64 converts a byte count to Kafka's int64.
func clampInt64(n uint64) int64 {
	return int64(min(n, 1<<63-1))
}
