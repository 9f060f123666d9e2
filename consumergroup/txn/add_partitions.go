package txn

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup"
)

// AddPartitionsToTxn adds partitions to a producer's transaction (v0-v3,
// from clients), starting it if none is ongoing, or, for v4+ (from
// brokers, KIP-890 part 1), does so for a batch of transactions, or only
// checks that the partitions are in the ongoing transaction
// (VerifyOnly: 0 for those that are, INVALID_TXN_STATE for the others,
// and nothing stored).
//
// A partition of an unknown topic, or beyond its partition count, is
// UNKNOWN_TOPIC_OR_PARTITION and the others of the request
// OPERATION_NOT_ATTEMPTED. Otherwise every partition gets the
// transaction's code: INVALID_PRODUCER_ID_MAPPING (unknown id, or
// another producer id), PRODUCER_FENCED (another epoch;
// INVALID_PRODUCER_EPOCH before v2), CONCURRENT_TRANSACTIONS (the
// previous transaction is still being completed), or 0 once the new
// state is durable.
func (c *Coordinator) AddPartitionsToTxn(ctx context.Context, req *kmsg.AddPartitionsToTxnRequest) *kmsg.AddPartitionsToTxnResponse {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		topics := make([]kmsg.AddPartitionsToTxnRequestTransactionTopic, len(req.Topics))
		for i, t := range req.Topics {
			topics[i] = kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: t.Topic, Partitions: t.Partitions}
		}
		codes := c.addPartitions(ctx, req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, topics)
		for i, t := range req.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, tx := range req.Transactions {
		codes := c.addPartitions(ctx, req.Version, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly, tx.Topics)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		for i, t := range tx.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp
}

// addPartitions is one transaction of AddPartitionsToTxn: it returns a
// code per partition, indexed as topics.
func (c *Coordinator) addPartitions(ctx context.Context, version int16, id string, producerID int64, epoch int16, verifyOnly bool, topics []kmsg.AddPartitionsToTxnRequestTransactionTopic) [][]int16 {
	codes := make([][]int16, len(topics))
	all := func(code int16) [][]int16 {
		for i, t := range topics {
			codes[i] = make([]int16, len(t.Partitions))
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
		return codes
	}
	unknown := false
	var add []TopicPartition
	for i, t := range topics {
		codes[i] = make([]int16, len(t.Partitions))
		topic, ok := c.cluster.Topic(t.Topic)
		for j, p := range t.Partitions {
			if !ok || p < 0 || p >= topic.PartitionCount() {
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
				unknown = true
				continue
			}
			add = append(add, TopicPartition{t.Topic, p})
		}
	}
	if unknown && !verifyOnly {
		for i := range codes {
			for j := range codes[i] {
				if codes[i][j] == 0 {
					codes[i][j] = kerr.OperationNotAttempted.Code
				}
			}
		}
		return codes
	}
	if code := c.lockID(id); code != 0 {
		return all(code)
	}
	defer c.mu.Unlock()
	if verifyOnly {
		m := c.txns[id]
		for i, t := range topics {
			for j, p := range t.Partitions {
				if codes[i][j] != 0 {
					continue
				}
				switch {
				case m == nil || m.producerID != producerID:
					codes[i][j] = kerr.InvalidProducerIDMapping.Code
				case m.producerEpoch != epoch:
					codes[i][j] = kerr.InvalidProducerEpoch.Code
				case m.state != stateOngoing:
					codes[i][j] = kerr.InvalidTxnState.Code
				default:
					if _, in := m.partitions[TopicPartition{t.Topic, p}]; !in {
						codes[i][j] = kerr.InvalidTxnState.Code
					}
				}
			}
		}
		return codes
	}
	return all(c.addLocked(ctx, version, 2, id, producerID, epoch, add))
}

// addLocked adds partitions add to the transaction of id (c.mu held):
// Kafka's checks in Kafka's order, then, unless every partition is in
// the ongoing transaction already, the new Ongoing state is stored.
// fencedFrom is the API version from which a wrong epoch is
// PRODUCER_FENCED.
func (c *Coordinator) addLocked(ctx context.Context, version, fencedFrom int16, id string, producerID int64, epoch int16, add []TopicPartition) int16 {
	m := c.txns[id]
	switch {
	case m == nil || m.producerID != producerID:
		return kerr.InvalidProducerIDMapping.Code
	case m.producerEpoch != epoch:
		return fencedCode(version, fencedFrom)
	case m.pending, preparing(m.state), m.state == stateDead, m.state == statePrepareEpochFence:
		return kerr.ConcurrentTransactions.Code
	}
	if m.state == stateOngoing {
		missing := false
		for _, tp := range add {
			if _, in := m.partitions[tp]; !in {
				missing = true
				break
			}
		}
		if !missing {
			return 0
		}
	}
	next := m.clone()
	now := c.now()
	if m.state != stateOngoing {
		next.partitions = map[TopicPartition]struct{}{}
		next.startTime = now
		next.endBumped, next.nextProducerID = false, -1
	}
	next.state, next.lastUpdate = stateOngoing, now
	for _, tp := range add {
		next.partitions[tp] = struct{}{}
	}
	return c.persist(ctx, m, next)
}

// AddOffsetsToTxn adds the __consumer_offsets partition of the request's
// group to the transaction, so that its TxnOffsetCommit is completed by
// the transaction's markers. Codes as AddPartitionsToTxn's (PRODUCER_FENCED
// from v2); COORDINATOR_NOT_AVAILABLE while __consumer_offsets does not
// exist.
func (c *Coordinator) AddOffsetsToTxn(ctx context.Context, req *kmsg.AddOffsetsToTxnRequest) *kmsg.AddOffsetsToTxnResponse {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	offsets, ok := c.cluster.Topic(consumergroup.OffsetsTopic)
	if !ok || offsets.PartitionCount() < 1 {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	tp := TopicPartition{consumergroup.OffsetsTopic, consumergroup.PartitionFor(req.Group, offsets.PartitionCount())}
	if code := c.lockID(req.TransactionalID); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	defer c.mu.Unlock()
	resp.ErrorCode = c.addLocked(ctx, req.Version, 2, req.TransactionalID, req.ProducerID, req.ProducerEpoch, []TopicPartition{tp})
	return resp
}
