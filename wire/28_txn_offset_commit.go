package wire

// TxnOffsetCommit (key 28), versions 0-4.
//
// Commits a group's offsets inside the producer's transaction (KIP-98):
// the group coordinator appends them to the group's __consumer_offsets
// partition as a transactional batch of the producer, and they stay
// pending (invisible to OffsetFetch, UNSTABLE_OFFSET_COMMIT to a
// RequireStable fetch) until the transaction's marker commits them, or
// vanish if it aborts. Partitions of topics the cluster does not have are
// UNKNOWN_TOPIC_OR_PARTITION, decided here as Kafka's KafkaApis does; the
// coordinator checks group, member and generation and writes the rest.
// Waiting for durability runs in reply.finish.
//
// The producer must have added the group's partition to its transaction
// first (AddOffsetsToTxn); the partition refuses a stale producer epoch
// (INVALID_PRODUCER_EPOCH).
//
// Version notes: v1 same as v0; v2 leader epoch per partition (KIP-320);
// v3 flexible, and generation, member id and group instance id, checked
// as a member's OffsetCommit (KIP-447: ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID); v4 same as v3 (KIP-890 part 1
// errors). v5 (transaction version 2 verification) is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleTxnOffsetCommit(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	known := *req
	known.Topics = nil
	var unknown []kmsg.TxnOffsetCommitResponseTopic
	for _, rt := range req.Topics {
		kt := rt
		kt.Partitions = nil
		var ut *kmsg.TxnOffsetCommitResponseTopic
		for _, rp := range rt.Partitions {
			if _, err := s.cluster.Partition(rt.Topic, rp.Partition); err == nil {
				kt.Partitions = append(kt.Partitions, rp)
				continue
			}
			if ut == nil {
				unknown = append(unknown, kmsg.NewTxnOffsetCommitResponseTopic())
				ut = &unknown[len(unknown)-1]
				ut.Topic = rt.Topic
			}
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.UnknownTopicOrPartition.Code
			ut.Partitions = append(ut.Partitions, sp)
		}
		if len(kt.Partitions) > 0 {
			known.Topics = append(known.Topics, kt)
		}
	}
	if len(known.Topics) == 0 && len(unknown) > 0 {
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		resp.Topics = unknown
		return reply{resp: resp}
	}
	return reply{finish: func(ctx context.Context) kmsg.Response {
		resp := s.groups.TxnOffsetCommit(ctx, &known)
		resp.Topics = append(resp.Topics, unknown...)
		return resp
	}}
}
