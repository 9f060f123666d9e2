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
// The group's __consumer_offsets partition must be in the producer's
// ongoing transaction before the offsets are written, as Kafka's group
// coordinator verifies since KIP-890: the partition's leader hands out a
// verification guard (as for a transactional produce, txn_verify.go),
// then the transaction coordinator is asked. Before v5 the producer must
// have added the partition itself (AddOffsetsToTxn) and the coordinator
// is only asked whether it did (AddPartitionsToTxn VerifyOnly); from v5
// (transaction version 2, KIP-890 part 2) the client skips
// AddOffsetsToTxn and the coordinator is asked to add the partition. No
// question is asked while the producer's transaction is under way on the
// partition already. The append presents the guard, which the
// transaction's marker ends: a commit that arrives (or is verified) after
// its transaction ended cannot begin a transaction there that no marker
// would end, leaving the group's offsets UNSTABLE and the partition's LSO
// stuck. Refusals, nothing written: INVALID_TXN_STATE when the partition
// is not in the transaction (or it ended), INVALID_PRODUCER_EPOCH for a
// stale or fenced epoch, INVALID_PRODUCER_ID_MAPPING for an unknown
// producer, NOT_COORDINATOR on a node that does not lead the group's
// partition, COORDINATOR_NOT_AVAILABLE (retriable) when the transaction
// coordinator cannot answer now, or before v5 is busy completing the
// previous transaction (CONCURRENT_TRANSACTIONS from v5). A server
// without a transaction coordinator (Options.Transactions) has no
// transactions to commit in: TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
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
		guard, code := s.verifyTxnOffsets(ctx, req)
		if code != 0 {
			resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
			resp.Topics = txnOffsetCommitCodes(known.Topics, code)
			resp.Topics = append(resp.Topics, unknown...)
			return resp
		}
		resp := s.groups.TxnOffsetCommit(ctx, &known, guard)
		resp.Topics = append(resp.Topics, unknown...)
		return resp
	}}
}

// verifyTxnOffsets verifies that the __consumer_offsets partition of
// req's group is in the producer's ongoing transaction, or from v5 has it
// added (see above), and returns the guard to append with, or the code
// for every partition of the request.
func (s *Server) verifyTxnOffsets(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) (guard uint64, code int16) {
	switch {
	case s.txns == nil:
		return 0, kerr.TransactionalIDAuthorizationFailed.Code
	case req.Group == "":
		return 0, kerr.InvalidGroupID.Code
	case req.ProducerID < 0 || req.ProducerEpoch < 0:
		return 0, kerr.InvalidProducerIDMapping.Code
	}
	offsets, ok := s.cluster.Topic(consumergroup.OffsetsTopic)
	if !ok || offsets.PartitionCount() < 1 {
		return 0, kerr.CoordinatorNotAvailable.Code
	}
	index := consumergroup.PartitionFor(req.Group, offsets.PartitionCount())
	add := req.Version >= 5
	guard, err := offsets.Partition(index).StartTxnVerification(req.ProducerID, req.ProducerEpoch, add)
	if err != nil {
		// This node does not lead the group's partition: it is not
		// the group's coordinator.
		return 0, kerr.NotCoordinator.Code
	}
	if guard == 0 {
		// The producer's transaction is under way on the partition.
		return 0, 0
	}
	code, err = s.addToTxn(ctx, !add, req.TransactionalID, req.ProducerID, req.ProducerEpoch, consumergroup.OffsetsTopic, index)
	if err != nil {
		s.logger.Debug("verifying a group's transaction failed", zap.String("group", req.Group), zap.Error(err))
		return 0, kerr.CoordinatorNotAvailable.Code
	}
	switch code {
	case 0:
		return guard, 0
	case kerr.InvalidProducerIDMapping.Code:
		return 0, code
	case kerr.InvalidTxnState.Code, kerr.TransactionAbortable.Code, kerr.UnknownTopicOrPartition.Code:
		return 0, kerr.InvalidTxnState.Code
	case kerr.ProducerFenced.Code, kerr.InvalidProducerEpoch.Code:
		return 0, kerr.InvalidProducerEpoch.Code
	case kerr.ConcurrentTransactions.Code:
		if add {
			return 0, code
		}
		// Before v5 Kafka answers what its verification's retriable
		// refusal becomes for a group commit.
		return 0, kerr.CoordinatorNotAvailable.Code
	}
	// The transaction coordinator is moving or cannot answer:
	// retriable for the client, as the group coordinator's own moves
	// are.
	return 0, kerr.CoordinatorNotAvailable.Code
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
