package txn

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// AllocateFunc hands out a producer id never handed out before
// (replication.Cluster.AllocateProducerID, through the wire layer).
type AllocateFunc func(ctx context.Context) (int64, error)

// InitProducerID answers InitProducerId for a transactional id (the wire
// layer answers those without one). The first call for an id gets a new
// producer id (from allocate) at epoch 0; each later call bumps the
// epoch, fencing the previous instance, or hands out a new producer id
// once the epoch is exhausted. An ongoing transaction is aborted first,
// with the epoch bumped (the client gets CONCURRENT_TRANSACTIONS and
// retries until the abort is complete); so is one being completed. With
// ProducerID/ProducerEpoch set (v3+, KIP-360) the producer must be the
// id's current one (or retry the last bump), else PRODUCER_FENCED
// (INVALID_PRODUCER_EPOCH before v4). transaction.timeout.ms must be
// positive and at most Config.MaxTimeout (INVALID_TRANSACTION_TIMEOUT).
func (c *Coordinator) InitProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest, allocate AllocateFunc) *kmsg.InitProducerIDResponse {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID == nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	id := *req.TransactionalID
	timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
	if id == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	if req.TransactionTimeoutMillis <= 0 || timeout > c.cfg.MaxTimeout {
		resp.ErrorCode = kerr.InvalidTransactionTimeout.Code
		return resp
	}
	fresh := int64(-1)
	for {
		if code := c.lockID(id); code != 0 {
			resp.ErrorCode = code
			return resp
		}
		m := c.txns[id]
		needsID := m == nil || (!m.pending && epochExhausted(m.producerEpoch) && (m.state == stateEmpty || completes(m.state)))
		if needsID && fresh < 0 {
			// Allocating may ask the metadata leader: not under c.mu.
			c.mu.Unlock()
			var err error
			if fresh, err = allocate(ctx); err != nil {
				resp.ErrorCode = storeErrorCode(err)
				return resp
			}
			continue
		}
		code := c.initLocked(ctx, req, m, id, timeout, fresh, resp)
		c.mu.Unlock()
		resp.ErrorCode = code
		if code != 0 {
			resp.ProducerID, resp.ProducerEpoch = -1, -1
		}
		return resp
	}
}

// initLocked is InitProducerID for id under c.mu, m its metadata (nil
// for a new id), fresh a new producer id if one was allocated (else -1).
func (c *Coordinator) initLocked(ctx context.Context, req *kmsg.InitProducerIDRequest, m *metadata, id string, timeout time.Duration, fresh int64, resp *kmsg.InitProducerIDResponse) int16 {
	now := c.now()
	if m == nil {
		m = &metadata{
			id: id, producerID: fresh, producerEpoch: 0, lastProducerID: -1, lastProducerEpoch: -1, nextProducerID: -1,
			timeout: timeout, state: stateEmpty, partitions: map[TopicPartition]struct{}{}, lastUpdate: now,
		}
		c.txns[id] = m
		if code := c.persist(ctx, m, m); code != 0 {
			if c.txns[id] == m {
				delete(c.txns, id)
			}
			return code
		}
		resp.ProducerID, resp.ProducerEpoch = m.producerID, m.producerEpoch
		return 0
	}
	if m.pending {
		return kerr.ConcurrentTransactions.Code
	}
	expected := req.Version >= 3 && req.ProducerID >= 0
	if expected && !(m.producerEpoch < 0 || req.ProducerID == m.producerID ||
		(req.ProducerID == m.lastProducerID && epochExhausted(req.ProducerEpoch))) {
		return fencedCode(req.Version, 4)
	}
	switch m.state {
	case statePrepareCommit, statePrepareAbort, stateDead, statePrepareEpochFence:
		return kerr.ConcurrentTransactions.Code
	case stateOngoing:
		// Fence the current producer and abort its transaction; the
		// client retries once the abort is complete.
		if code := c.abortFencing(ctx, m, "fenced by a new producer instance"); code != 0 {
			return code
		}
		return kerr.ConcurrentTransactions.Code
	}
	next := m.clone()
	next.timeout, next.state, next.lastUpdate = timeout, stateEmpty, now
	next.endBumped, next.nextProducerID = false, -1
	next.partitions, next.startTime = map[TopicPartition]struct{}{}, time.Time{}
	switch {
	case expected && req.ProducerID == m.lastProducerID && req.ProducerID != m.producerID:
		// A retry of the call that rotated the producer id: same
		// answer.
		resp.ProducerID, resp.ProducerEpoch = m.producerID, m.producerEpoch
		return 0
	case epochExhausted(m.producerEpoch):
		next.lastProducerID, next.producerID = m.producerID, fresh
		next.producerEpoch, next.lastProducerEpoch = 0, -1
	case !expected || m.producerEpoch < 0 || req.ProducerEpoch == m.producerEpoch:
		next.lastProducerEpoch, next.producerEpoch = m.producerEpoch, m.producerEpoch+1
	case req.ProducerEpoch == m.lastProducerEpoch:
		// A retry of the last bump: same answer, no new bump.
		resp.ProducerID, resp.ProducerEpoch = m.producerID, m.producerEpoch
		return 0
	default:
		return fencedCode(req.Version, 4)
	}
	if code := c.persist(ctx, m, next); code != 0 {
		return code
	}
	c.logger.Debug("producer initialised", zap.String("transactional-id", id), zap.Int64("producer-id", m.producerID), zap.Int16("epoch", m.producerEpoch))
	resp.ProducerID, resp.ProducerEpoch = m.producerID, m.producerEpoch
	return 0
}

// abortFencing aborts m's ongoing transaction with the epoch bumped, so
// that the producer that ran it is fenced (Kafka's PrepareEpochFence):
// PrepareAbort is stored, then the markers are written, then
// CompleteAbort. c.mu is held (released while the record is awaited).
func (c *Coordinator) abortFencing(ctx context.Context, m *metadata, reason string) int16 {
	next := m.clone()
	if !epochExhausted(m.producerEpoch) {
		next.producerEpoch = m.producerEpoch + 1
	}
	next.lastProducerEpoch = -1
	next.endBumped, next.nextProducerID = false, -1
	next.state = statePrepareAbort
	next.lastUpdate = c.now()
	if code := c.persist(ctx, m, next); code != 0 {
		return code
	}
	p := c.partitionFor(m.id)
	epoch, _ := c.ownedEpochLocked(p)
	c.logger.Info("transaction aborted by the coordinator", zap.String("transactional-id", m.id), zap.Int64("producer-id", m.producerID),
		zap.Int16("epoch", m.producerEpoch), zap.String("reason", reason))
	c.sendMarkersLocked(m, p, epoch)
	return 0
}
