package wire

// OffsetCommit (key 8), versions 0-9.
//
// Stores a group's committed offsets (with leader epoch and metadata)
// durably in __consumer_offsets before answering. Partitions of topics
// the cluster does not have are UNKNOWN_TOPIC_OR_PARTITION, decided here
// as Kafka's KafkaApis does; the coordinator checks generation and member
// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, ...) and
// writes the rest. Waiting for durability runs in reply.finish, so the
// reader goes on reading the connection's next requests.
//
// Version notes: v1 generation, member id and a per-partition commit
// timestamp; v2 retention time instead of the timestamp (KIP-229 removes
// it again in v5); v3 throttle; v4 same as v3; v5 no retention time; v6
// leader epoch (KIP-320); v7 group instance id (KIP-345); v8 flexible; v9
// member epoch for the new protocol (KIP-848; classic groups ignore it).
// v10 (topic ids instead of names) is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetCommit(s *Server, _ context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.OffsetCommitRequest)
	known := *req
	known.Topics = nil
	var unknown []kmsg.OffsetCommitResponseTopic
	for _, rt := range req.Topics {
		kt := rt
		kt.Partitions = nil
		var ut *kmsg.OffsetCommitResponseTopic
		for _, rp := range rt.Partitions {
			if _, err := s.cluster.Partition(rt.Topic, rp.Partition); err == nil {
				kt.Partitions = append(kt.Partitions, rp)
				continue
			}
			if ut == nil {
				unknown = append(unknown, kmsg.NewOffsetCommitResponseTopic())
				ut = &unknown[len(unknown)-1]
				ut.Topic = rt.Topic
			}
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.UnknownTopicOrPartition.Code
			ut.Partitions = append(ut.Partitions, sp)
		}
		if len(kt.Partitions) > 0 {
			known.Topics = append(known.Topics, kt)
		}
	}
	if len(known.Topics) == 0 && len(unknown) > 0 {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Topics = unknown
		return reply{resp: resp}
	}
	return reply{finish: func(ctx context.Context) kmsg.Response {
		resp := s.groups.OffsetCommit(ctx, &known)
		resp.Topics = append(resp.Topics, unknown...)
		return resp
	}}
}
