package wire

// ListOffsets (key 2), versions 0-11.
//
// Resolves a timestamp per partition to an offset: -2 earliest (the log
// start offset), -1 latest (the high watermark, or the last stable offset
// under read_committed), -3 the record with the largest timestamp
// (KIP-734), -4 earliest local (the log start offset: all of Sluice's log
// is local, KIP-405), -5 latest tiered and -6 earliest pending upload
// (no tiered storage, so no offset: -1, as Kafka answers without it), and
// any other timestamp to the first record whose timestamp is at or after it
// (offset -1 when there is none). Under read_committed (v2+) a record found
// by timestamp (or -3) at or past the last stable offset is not answered
// (offset -1), as Kafka bounds lookups by its last fetchable offset.
//
// Only the partition's leader answers; elsewhere the error is
// NOT_LEADER_OR_FOLLOWER. A CurrentLeaderEpoch (v4+) newer than ours is UNKNOWN_LEADER_EPOCH; older
// is FENCED_LEADER_EPOCH.
//
// Version notes: v0 answers a list of offsets (OldStyleOffsets; Sluice
// gives the one resolved offset when MaxNumOffsets > 0); v1 single offset
// and timestamp; v2 isolation level; v4 leader epochs (KIP-320); v5 is v4
// with OFFSET_NOT_AVAILABLE; v6 flexible; v7 -3; v8 -4; v9 -5; v10 timeout
// (KIP-1075); v11 -6.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition"
)

// Special ListOffsets timestamps.
const (
	listLatest                = -1
	listEarliest              = -2
	listMaxTimestamp          = -3
	listEarliestLocal         = -4
	listLatestTiered          = -5
	listEarliestPendingUpload = -6
)

func handleListOffsets(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			p, err := s.cluster.Partition(rt.Topic, rp.Partition)
			if err == nil && !leads(p, s.cluster.NodeID()) {
				// Only the leader knows the high watermark; a follower's
				// handle reports no offsets, which must not reach a
				// client as offset 0 (a consumer resetting to latest
				// would replay the partition).
				err = kerr.NotLeaderForPartition
			}
			if err == nil {
				err = checkLeaderEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil {
				sp.Offset, sp.Timestamp, err = listOffset(p, rp.Timestamp, partition.Isolation(req.IsolationLevel))
				sp.LeaderEpoch = p.LeaderEpoch()
			}
			if err != nil {
				sp.ErrorCode = s.errorCode(err)
				sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
			}
			if req.Version == 0 && sp.ErrorCode == 0 && rp.MaxNumOffsets > 0 && sp.Offset >= 0 {
				sp.OldStyleOffsets = []int64{sp.Offset}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return reply{resp: resp}
}

// listOffset resolves one ListOffsets timestamp.
func listOffset(p Partition, ts int64, isolation partition.Isolation) (offset, timestamp int64, err error) {
	offsets := p.Offsets()
	switch ts {
	case listLatest:
		if isolation == partition.ReadCommitted {
			return offsets.LastStable, -1, nil
		}
		return offsets.HighWatermark, -1, nil
	case listEarliest, listEarliestLocal:
		return offsets.LogStart, -1, nil
	case listLatestTiered, listEarliestPendingUpload:
		return -1, -1, nil
	case listMaxTimestamp:
		offset, timestamp, found, err := p.MaxTimestamp()
		if err != nil || !found || !visible(offset, offsets, isolation) {
			return -1, -1, err
		}
		return offset, timestamp, nil
	}
	if ts < 0 {
		return -1, -1, kerr.InvalidRequest
	}
	offset, timestamp, found, err := p.OffsetForTimestamp(ts)
	if err != nil || !found || !visible(offset, offsets, isolation) {
		return -1, -1, err
	}
	return offset, timestamp, nil
}

// checkLeaderEpoch compares a client's idea of the leader epoch (-1: none)
// with the partition's (KIP-320).
func checkLeaderEpoch(p Partition, clientEpoch int32) error {
	if clientEpoch < 0 {
		return nil
	}
	switch epoch := p.LeaderEpoch(); {
	case clientEpoch > epoch:
		return kerr.UnknownLeaderEpoch
	case clientEpoch < epoch:
		return kerr.FencedLeaderEpoch
	}
	return nil
}

// visible reports whether offset is below what isolation may read: the
// last stable offset for read_committed (as Kafka's lastFetchableOffset:
// a timestamp found in an open transaction is not answered), else
// everything found.
func visible(offset int64, offsets partition.Offsets, isolation partition.Isolation) bool {
	return isolation != partition.ReadCommitted || offset < offsets.LastStable
}
