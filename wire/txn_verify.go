package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// Produce verification (KIP-890 part 1). A transactional produce (a
// transactional id in the request) to a partition is accepted only if the
// partition is in the producer's ongoing transaction, as its transaction
// coordinator says: asked directly when this node coordinates the id,
// else with AddPartitionsToTxn v4 (VerifyOnly) to the coordinator through
// the forwarding client. A positive answer is cached per producer id,
// epoch and partition, with the partition's leader epoch, until a marker
// is written on the partition for the producer (writeTxnMarker forgets
// it) or the leader epoch changes; so a producer pays one round trip per
// partition and transaction.
//
// Answers, as Kafka's: INVALID_TXN_STATE when the partition is not in the
// transaction (or the id has none, or another producer id);
// INVALID_PRODUCER_EPOCH for another epoch; NOT_ENOUGH_REPLICAS, which
// every client retries, when the coordinator cannot say now (not found,
// loading, moving, busy completing the previous transaction).
//
// The window Kafka closes with a verification guard in the producer
// state is open here: a produce verified just before its transaction
// ends could land after the partition's marker. A client does not
// produce to a transaction it is ending.

// verifyTimeoutMillis bounds a verification sent to another node.
const verifyTimeoutMillis = 5000

// maxVerifiedTxns bounds the cache; when it is full it is emptied.
const maxVerifiedTxns = 1 << 16

// verifiedKey is one producer's verified partition.
type verifiedKey struct {
	producerID int64
	epoch      int16
	topic      string
	partition  int32
}

// verifiedTxns is the cache of positive verifications: the partition's
// leader epoch at the time, per key. Safe for concurrent use.
type verifiedTxns struct {
	mu      sync.Mutex
	entries map[verifiedKey]int32
}

func (v *verifiedTxns) has(k verifiedKey, leaderEpoch int32) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.entries[k]
	return ok && e == leaderEpoch
}

func (v *verifiedTxns) add(k verifiedKey, leaderEpoch int32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.entries == nil || len(v.entries) >= maxVerifiedTxns {
		v.entries = make(map[verifiedKey]int32)
	}
	v.entries[k] = leaderEpoch
}

// forget drops every verification of producerID on the partition: its
// transaction there ended.
func (v *verifiedTxns) forget(producerID int64, topic string, partition int32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k := range v.entries {
		if k.producerID == producerID && k.topic == topic && k.partition == partition {
			delete(v.entries, k)
		}
	}
}

// verifyTxnProduce checks that partition index of topic, which p is and
// this node leads, is in the ongoing transaction of the producer of
// records (its first batch), for transactional id; with add (Produce
// v12+, transaction version 2) it has the coordinator add the partition
// to the transaction instead. A batch that is not transactional is not
// verified (the partition judges it).
func (s *Server) verifyTxnProduce(ctx context.Context, add bool, id string, topic string, index int32, p Partition, records []byte) error {
	h, err := log.ParseBatchHeader(records)
	if err != nil || !h.Transactional() {
		return nil
	}
	key := verifiedKey{h.ProducerID, h.ProducerEpoch, topic, index}
	leaderEpoch := p.LeaderEpoch()
	if s.verified.has(key, leaderEpoch) {
		return nil
	}
	code, err := s.addToTxn(ctx, !add, id, h.ProducerID, h.ProducerEpoch, topic, index)
	if err != nil {
		s.logger.Debug("transaction verification failed", zap.Error(err))
		return fmt.Errorf("verify the transaction of %q: %w", id, kerr.NotEnoughReplicas)
	}
	switch code {
	case 0:
		s.verified.add(key, leaderEpoch)
		return nil
	case kerr.InvalidProducerEpoch.Code, kerr.ProducerFenced.Code:
		return fmt.Errorf("producer %d epoch %d is not the current producer of %q: %w", h.ProducerID, h.ProducerEpoch, id, kerr.InvalidProducerEpoch)
	case kerr.InvalidTxnState.Code, kerr.InvalidProducerIDMapping.Code, kerr.UnknownTopicOrPartition.Code:
		return fmt.Errorf("%s-%d is not in the ongoing transaction of %q (add it with AddPartitionsToTxn first): %w", topic, index, id, kerr.InvalidTxnState)
	}
	return fmt.Errorf("verify the transaction of %q: %v: %w", id, kerr.ErrorForCode(code), kerr.NotEnoughReplicas)
}

// addToTxn asks the transaction coordinator of id to add partition of
// topic to the ongoing transaction of producer producerID at epoch
// (AddPartitionsToTxn v5 from a broker), or with verifyOnly (v4) only
// whether it is in it, and returns the partition's code; an error when
// the coordinator could not be asked.
func (s *Server) addToTxn(ctx context.Context, verifyOnly bool, id string, producerID int64, epoch int16, topic string, partition int32) (int16, error) {
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
