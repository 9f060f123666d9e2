package wire

// TxnOffsetCommit (key 28), versions 0-5.
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
// Before v5 the producer must have added the group's partition to its
// transaction first (AddOffsetsToTxn); the partition refuses a stale
// producer epoch (INVALID_PRODUCER_EPOCH). From v5 (transaction version
// 2, KIP-890 part 2) the client skips AddOffsetsToTxn: the group's
// __consumer_offsets partition is added to the transaction here, at the
// transaction coordinator, before the offsets are written (refusals:
// INVALID_PRODUCER_EPOCH for a stale epoch, INVALID_PRODUCER_ID_MAPPING
// for an unknown producer, CONCURRENT_TRANSACTIONS while the previous
// transaction completes, COORDINATOR_NOT_AVAILABLE when the transaction
// coordinator cannot answer; nothing is written).
//
// Version notes: v1 same as v0; v2 leader epoch per partition (KIP-320);
// v3 flexible, and generation, member id and group instance id, checked
// as a member's OffsetCommit (KIP-447: ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID); v4 same as v3 (KIP-890 part 1
// errors); v5 the group is added to the transaction implicitly (KIP-890
// part 2).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup"
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
		if req.Version >= 5 {
			if code := s.addGroupToTxn(ctx, req); code != 0 {
				resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
				resp.Topics = txnOffsetCommitCodes(known.Topics, code)
				resp.Topics = append(resp.Topics, unknown...)
				return resp
			}
		}
		resp := s.groups.TxnOffsetCommit(ctx, &known)
		resp.Topics = append(resp.Topics, unknown...)
		return resp
	}}
}

// addGroupToTxn adds the __consumer_offsets partition of req's group to
// the producer's transaction (TxnOffsetCommit v5+, transaction version
// 2) and returns 0 or the code for every partition of the request.
func (s *Server) addGroupToTxn(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) int16 {
	if s.txns == nil {
		return kerr.TransactionalIDAuthorizationFailed.Code
	}
	offsets, ok := s.cluster.Topic(consumergroup.OffsetsTopic)
	if !ok || offsets.PartitionCount() < 1 {
		return kerr.CoordinatorNotAvailable.Code
	}
	partition := consumergroup.PartitionFor(req.Group, offsets.PartitionCount())
	code, err := s.addToTxn(ctx, false, req.TransactionalID, req.ProducerID, req.ProducerEpoch, consumergroup.OffsetsTopic, partition)
	if err != nil {
		s.logger.Debug("adding a group to its transaction failed", zap.String("group", req.Group), zap.Error(err))
		return kerr.CoordinatorNotAvailable.Code
	}
	switch code {
	case 0, kerr.InvalidProducerIDMapping.Code, kerr.ConcurrentTransactions.Code, kerr.InvalidTxnState.Code:
		return code
	case kerr.ProducerFenced.Code, kerr.InvalidProducerEpoch.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.NotCoordinator.Code, kerr.CoordinatorLoadInProgress.Code, kerr.CoordinatorNotAvailable.Code:
		// The transaction coordinator is moving: retriable for the
		// client, as the group coordinator's own moves are.
		return kerr.CoordinatorNotAvailable.Code
	}
	return code
}

// txnOffsetCommitCodes answers every partition of topics with code.
func txnOffsetCommitCodes(topics []kmsg.TxnOffsetCommitRequestTopic, code int16) []kmsg.TxnOffsetCommitResponseTopic {
	out := make([]kmsg.TxnOffsetCommitResponseTopic, 0, len(topics))
	for _, rt := range topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out
}
