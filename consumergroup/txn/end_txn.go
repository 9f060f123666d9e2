package txn

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn commits or aborts the producer's ongoing transaction: the
// PrepareCommit or PrepareAbort state is stored, the client is answered,
// and the markers are then written to every partition of the transaction
// before CompleteCommit or CompleteAbort is stored (until then the id's
// other requests answer CONCURRENT_TRANSACTIONS).
//
// Version 5 is transaction version 2 (KIP-890 part 2): the end bumps the
// producer epoch, the markers carry the bumped epoch (so a produce of the
// ended transaction that arrives late is fenced by the partition), and
// the response carries the producer id and epoch the client continues
// with. When the epoch is exhausted (Kafka's isEpochExhausted) the markers
// carry the last epoch and the client gets a new producer id (from
// allocate) at epoch 0. An abort with no transaction under way is
// allowed and bumps the epoch too. A retry of a version 5 end (the epoch
// before its bump, or the producer id before the rotation) is answered
// as the end was, without a new bump.
//
// Codes, as Kafka's: INVALID_PRODUCER_ID_MAPPING (unknown id, another
// producer id), PRODUCER_FENCED (another epoch; INVALID_PRODUCER_EPOCH
// before v2), CONCURRENT_TRANSACTIONS (a change of the id is being
// stored, or the same end is being completed), INVALID_TXN_STATE (no
// transaction, or the other end already chosen); a retry of a completed
// end with the same outcome succeeds.
func (c *Coordinator) EndTxn(ctx context.Context, req *kmsg.EndTxnRequest, allocate AllocateFunc) *kmsg.EndTxnResponse {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	fresh := int64(-1)
	for {
		if code := c.lockID(req.TransactionalID); code != 0 {
			resp.ErrorCode = code
			return resp
		}
		m := c.txns[req.TransactionalID]
		if req.Version >= 5 && fresh < 0 && m != nil && !m.pending && m.producerID == req.ProducerID &&
			m.producerEpoch == req.ProducerEpoch && epochExhausted(m.producerEpoch) {
			// The bump exhausts the epoch: a new producer id is needed.
			// Allocating may ask the metadata leader: not under c.mu.
			c.mu.Unlock()
			var err error
			if fresh, err = allocate(ctx); err != nil {
				resp.ErrorCode = storeErrorCode(err)
				return resp
			}
			continue
		}
		resp.ErrorCode = c.endLocked(ctx, req, fresh, resp)
		c.mu.Unlock()
		if resp.ErrorCode != 0 {
			resp.ProducerID, resp.ProducerEpoch = -1, -1
		}
		return resp
	}
}

// endLocked is EndTxn under c.mu; fresh is a new producer id allocated
// for an exhausted epoch (else -1). On success a version 5 response gets
// the producer id and epoch the client continues with.
func (c *Coordinator) endLocked(ctx context.Context, req *kmsg.EndTxnRequest, fresh int64, resp *kmsg.EndTxnResponse) int16 {
	m := c.txns[req.TransactionalID]
	bump := req.Version >= 5
	if bump && m != nil && !m.pending && m.endBumped {
		if code, retry := c.endRetryLocked(m, req, resp); retry {
			return code
		}
	}
	switch {
	case m == nil || m.producerID != req.ProducerID:
		return kerr.InvalidProducerIDMapping.Code
	case m.producerEpoch != req.ProducerEpoch:
		return fencedCode(req.Version, 2)
	case m.pending:
		return kerr.ConcurrentTransactions.Code
	}
	commit := req.Commit
	switch m.state {
	case stateOngoing:
	case stateEmpty, stateCompleteCommit, stateCompleteAbort:
		if bump {
			// Transaction version 2: the epoch of a completed
			// transaction was bumped, so this is a new, empty one. Its
			// abort is allowed (and bumps the epoch); its commit is not.
			if commit {
				return kerr.InvalidTxnState.Code
			}
			break
		}
		switch {
		case m.state == stateEmpty:
			return kerr.InvalidTxnState.Code
		case m.state == stateCompleteCommit:
			return codeIf(!commit, kerr.InvalidTxnState.Code)
		default:
			return codeIf(commit, kerr.InvalidTxnState.Code)
		}
	case statePrepareCommit, statePrepareAbort:
		if bump {
			// Transaction version 2: the end being completed bumped
			// the epoch, so this is the next transaction's end (a
			// retry of that end was recognised above): it waits.
			return kerr.ConcurrentTransactions.Code
		}
		if m.state == statePrepareAbort {
			return codeIf(commit, kerr.InvalidTxnState.Code, kerr.ConcurrentTransactions.Code)
		}
		if commit {
			return kerr.ConcurrentTransactions.Code
		}
		return kerr.InvalidTxnState.Code
	default:
		return kerr.ConcurrentTransactions.Code
	}
	next := m.clone()
	next.state = statePrepareAbort
	if commit {
		next.state = statePrepareCommit
	}
	if m.state != stateOngoing {
		// An empty abort: no partition gets a marker.
		next.partitions = map[TopicPartition]struct{}{}
		next.startTime = c.now()
	}
	next.lastUpdate = c.now()
	if bump {
		next.endBumped, next.lastProducerEpoch, next.nextProducerID = true, m.producerEpoch, -1
		next.producerEpoch = m.producerEpoch + 1
		if epochExhausted(m.producerEpoch) {
			if fresh < 0 {
				// The epoch ran out while the new id was allocated:
				// the client retries.
				return kerr.ConcurrentTransactions.Code
			}
			next.nextProducerID = fresh
		}
	}
	if code := c.persist(ctx, m, next); code != 0 {
		return code
	}
	if bump {
		resp.ProducerID, resp.ProducerEpoch = m.producerID, m.producerEpoch
		if m.nextProducerID >= 0 {
			resp.ProducerID, resp.ProducerEpoch = m.nextProducerID, 0
		}
	}
	p := c.partitionFor(m.id)
	epoch, _ := c.ownedEpochLocked(p)
	c.sendMarkersLocked(m, p, epoch)
	return 0
}

// endRetryLocked recognises a retry of the version 2 EndTxn that ended
// m's last transaction (m.endBumped): the producer id and epoch it was
// sent with. retry is false for any other request. A retry is answered
// as the end was (the producer id and epoch to continue with) once the
// end is complete, CONCURRENT_TRANSACTIONS while it is being completed,
// and INVALID_TXN_STATE for the other outcome.
func (c *Coordinator) endRetryLocked(m *metadata, req *kmsg.EndTxnRequest, resp *kmsg.EndTxnResponse) (code int16, retry bool) {
	sameID := req.ProducerID == m.producerID && req.ProducerEpoch == m.lastProducerEpoch && m.lastProducerEpoch >= 0
	rotated := completes(m.state) && m.producerEpoch == 0 && req.ProducerID == m.lastProducerID &&
		m.lastProducerID >= 0 && m.lastProducerID != m.producerID && epochExhausted(req.ProducerEpoch)
	if !sameID && !rotated {
		return 0, false
	}
	commit := m.state == statePrepareCommit || m.state == stateCompleteCommit
	switch {
	case req.Commit != commit:
		return kerr.InvalidTxnState.Code, true
	case preparing(m.state):
		return kerr.ConcurrentTransactions.Code, true
	}
	resp.ProducerID, resp.ProducerEpoch = m.producerID, m.producerEpoch
	return 0, true
}

// codeIf returns code when cond holds, else otherwise (0 if not given).
func codeIf(cond bool, code int16, otherwise ...int16) int16 {
	if cond {
		return code
	}
	if len(otherwise) > 0 {
		return otherwise[0]
	}
	return 0
}
