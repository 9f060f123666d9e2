package wire

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// Produce verification (KIP-890). A transactional produce (a
// transactional id in the request) that would begin its producer's
// transaction on a partition is accepted only if the partition is in the
// producer's ongoing transaction, as its transaction coordinator says:
// asked directly when this node coordinates the id, else with
// AddPartitionsToTxn v4 (VerifyOnly) to the coordinator through the
// forwarding client. From Produce v12 (transaction version 2, KIP-890
// part 2) the coordinator is asked to add the partition instead
// (AddPartitionsToTxn v5, not VerifyOnly), starting the transaction if
// none is under way. Once the producer's transaction is under way on the
// partition (the partition's producer state says so) its later produces
// are not verified again, so a producer pays one round trip per partition
// and transaction.
//
// The hanging-transaction guard: the partition hands out a verification
// guard before the coordinator is asked, a marker for the producer ends
// it, and the append that would begin the transaction must present a
// guard in force, else INVALID_TXN_STATE with nothing stored. So a
// produce verified just before its transaction ends cannot land after
// the marker and hold the LSO back for good (partition/txn_verify.go).
//
// Answers, as Kafka's: INVALID_TXN_STATE when the partition is not in the
// transaction (or the id has none, or another producer id);
// INVALID_PRODUCER_EPOCH for another epoch; NOT_ENOUGH_REPLICAS, which
// every client retries, when the coordinator cannot say now (not found,
// loading, moving, busy completing the previous transaction).

// verifyTimeoutMillis bounds a verification sent to another node.
const verifyTimeoutMillis = 5000

// While the coordinator answers CONCURRENT_TRANSACTIONS (the producer's
// previous transaction is being completed: under transaction version 2
// the client produces right after EndTxn, before the markers are
// written), the broker asks again, as Kafka's AddPartitionsToTxnManager
// does, waiting concurrentRetryMin, doubling up to concurrentRetryStep,
// for at most concurrentRetryMax in all, before answering the client a
// retriable error: clients meet it as a metadata refresh and a backoff
// of their own, far longer than the markers take.
const (
	concurrentRetryMin  = 2 * time.Millisecond
	concurrentRetryStep = 50 * time.Millisecond
	concurrentRetryMax  = time.Second
)

// verifyTxnProduce verifies the transactional produce of records (its
// first batch) to partition index of topic, which p is and this node
// leads, for transactional id (see above); with add (Produce v12+,
// transaction version 2) it has the coordinator add the partition to the
// transaction. It returns the guard to append with (AppendVerified), and
// verified false for records that are not transactional (a plain
// Append: the partition judges them).
func (s *Server) verifyTxnProduce(ctx context.Context, add bool, id string, topic string, index int32, p Partition, records []byte) (guard uint64, verified bool, err error) {
	h, err := log.ParseBatchHeader(records)
	if err != nil || !h.Transactional() {
		return 0, false, nil
	}
	guard, err = p.StartTxnVerification(h.ProducerID, h.ProducerEpoch, add)
	if err != nil || guard == 0 {
		return 0, true, err
	}
	code, err := s.addToTxn(ctx, !add, id, h.ProducerID, h.ProducerEpoch, topic, index)
	if err != nil {
		s.logger.Debug("transaction verification failed", zap.Error(err))
		return 0, true, fmt.Errorf("verify the transaction of %q: %w", id, kerr.NotEnoughReplicas)
	}
	switch code {
	case 0:
		return guard, true, nil
	case kerr.InvalidProducerEpoch.Code, kerr.ProducerFenced.Code:
		return 0, true, fmt.Errorf("producer %d epoch %d is not the current producer of %q: %w", h.ProducerID, h.ProducerEpoch, id, kerr.InvalidProducerEpoch)
	case kerr.InvalidTxnState.Code, kerr.InvalidProducerIDMapping.Code, kerr.UnknownTopicOrPartition.Code:
		return 0, true, fmt.Errorf("%s-%d is not in the ongoing transaction of %q (add it with AddPartitionsToTxn first): %w", topic, index, id, kerr.InvalidTxnState)
	}
	return 0, true, fmt.Errorf("verify the transaction of %q: %v: %w", id, kerr.ErrorForCode(code), kerr.NotEnoughReplicas)
}

// addToTxn asks the transaction coordinator of id to add partition of
// topic to the ongoing transaction of producer producerID at epoch
// (AddPartitionsToTxn v5 from a broker), or with verifyOnly (v4) only
// whether it is in it, and returns the partition's code; an error when
// the coordinator could not be asked.
func (s *Server) addToTxn(ctx context.Context, verifyOnly bool, id string, producerID int64, epoch int16, topic string, partition int32) (int16, error) {
	deadline := time.Now().Add(concurrentRetryMax)
	for wait := concurrentRetryMin; ; wait = min(2*wait, concurrentRetryStep) {
		code, err := s.addToTxnOnce(ctx, verifyOnly, id, producerID, epoch, topic, partition)
		if err != nil || code != kerr.ConcurrentTransactions.Code || time.Now().Add(wait).After(deadline) {
			return code, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return code, nil
		case <-t.C:
		}
	}
}

// addToTxnOnce is one attempt of addToTxn.
func (s *Server) addToTxnOnce(ctx context.Context, verifyOnly bool, id string, producerID int64, epoch int16, topic string, partition int32) (int16, error) {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 5
	if verifyOnly {
		req.Version = 4
	}
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = id, producerID, epoch, verifyOnly
	tx.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: topic, Partitions: []int32{partition}}}
	req.Transactions = append(req.Transactions, tx)
	return s.askTxnCoordinator(ctx, id, req)
}

// askTxnCoordinator sends an AddPartitionsToTxn for one partition of one
// transaction to the id's coordinator (this node, or another through the
// forwarding client) and returns the partition's code.
func (s *Server) askTxnCoordinator(ctx context.Context, id string, req *kmsg.AddPartitionsToTxnRequest) (int16, error) {
	find := kmsg.NewPtrFindCoordinatorRequest()
	find.CoordinatorType, find.CoordinatorKey = 1, id
	found := s.txns.FindCoordinator(ctx, find)
	if found.ErrorCode != 0 {
		return found.ErrorCode, nil
	}
	var resp *kmsg.AddPartitionsToTxnResponse
	if found.NodeID == s.cluster.NodeID() {
		resp = s.txns.AddPartitionsToTxn(ctx, req)
	} else {
		cl, err := s.forwarder.kafkaClient(s.cluster.NodeID(), s.cluster.Brokers())
		if err != nil {
			return 0, err
		}
		// The produce waits on the reader goroutine: bound it well
		// below the produce timeouts clients use.
		ctx, cancel := s.forwardContext(ctx, verifyTimeoutMillis)
		defer cancel()
		kresp, err := cl.Broker(int(found.NodeID)).Request(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("ask transaction coordinator node %d: %w", found.NodeID, err)
		}
		resp = kresp.(*kmsg.AddPartitionsToTxnResponse)
	}
	if resp.ErrorCode != 0 {
		return resp.ErrorCode, nil
	}
	for _, tx := range resp.Transactions {
		for _, t := range tx.Topics {
			for _, p := range t.Partitions {
				return p.ErrorCode, nil
			}
		}
	}
	return 0, errors.New("the transaction coordinator answered no partition")
}
