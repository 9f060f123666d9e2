package wire

// OffsetForLeaderEpoch (key 23), versions 0-4.
//
// For each partition and requested leader epoch, answers the largest
// epoch <= the requested one that wrote to the log, and the offset where
// the requested epoch's log ends: the start offset of the next higher
// epoch, or the log end offset for the latest epoch. An epoch above the
// latest is answered with epoch -1 and offset -1 (UNDEFINED) and no error,
// as Kafka does. Consumers use it to detect log truncation after a leader
// change (KIP-320); the rules are partition.Replica.EpochEndOffset's.
//
// A CurrentLeaderEpoch (v2+) newer than ours is UNKNOWN_LEADER_EPOCH;
// older is FENCED_LEADER_EPOCH. A follower's ReplicaID (v3+) is answered
// as a consumer's: a single node has no followers.
//
// Version notes: v1 the leader epoch in the response (KIP-279); v2
// CurrentLeaderEpoch and throttle (KIP-320); v3 ReplicaID (KIP-392); v4
// flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetForLeaderEpoch(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			p, err := s.cluster.Partition(rt.Topic, rp.Partition)
			if err == nil {
				err = checkLeaderEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil {
				sp.LeaderEpoch, sp.EndOffset, err = p.EpochEndOffset(rp.LeaderEpoch)
			}
			if err != nil {
				sp.ErrorCode = s.errorCode(err)
				sp.LeaderEpoch, sp.EndOffset = -1, -1
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return reply{resp: resp}
}
