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
// Codes, as Kafka's: INVALID_PRODUCER_ID_MAPPING (unknown id, another
// producer id), PRODUCER_FENCED (another epoch; INVALID_PRODUCER_EPOCH
// before v2), CONCURRENT_TRANSACTIONS (a change of the id is being
// stored, or the same end is being completed), INVALID_TXN_STATE (no
// transaction, or the other end already chosen); a retry of a completed
// end with the same outcome succeeds.
func (c *Coordinator) EndTxn(ctx context.Context, req *kmsg.EndTxnRequest) *kmsg.EndTxnResponse {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if code := c.lockID(req.TransactionalID); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	defer c.mu.Unlock()
	resp.ErrorCode = c.endLocked(ctx, req)
	return resp
}

func (c *Coordinator) endLocked(ctx context.Context, req *kmsg.EndTxnRequest) int16 {
	m := c.txns[req.TransactionalID]
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
	case stateCompleteCommit:
		return codeIf(!commit, kerr.InvalidTxnState.Code)
	case stateCompleteAbort:
		return codeIf(commit, kerr.InvalidTxnState.Code)
	case statePrepareCommit:
		if commit {
			return kerr.ConcurrentTransactions.Code
		}
		return kerr.InvalidTxnState.Code
	case statePrepareAbort:
		if !commit {
			return kerr.ConcurrentTransactions.Code
		}
		return kerr.InvalidTxnState.Code
	case stateEmpty:
		return kerr.InvalidTxnState.Code
	default:
		return kerr.ConcurrentTransactions.Code
	}
	next := m.clone()
	next.state = statePrepareAbort
	if commit {
		next.state = statePrepareCommit
	}
	next.lastUpdate = c.now()
	if code := c.persist(ctx, m, next); code != 0 {
		return code
	}
	p := c.partitionFor(m.id)
	epoch, _ := c.ownedEpochLocked(p)
	c.sendMarkersLocked(m, p, epoch)
	return 0
}

// codeIf returns code when cond holds, else 0.
func codeIf(cond bool, code int16) int16 {
	if cond {
		return code
	}
	return 0
}
