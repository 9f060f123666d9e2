package wire

// AddPartitionsToTxn (key 24), versions 0-5.
//
// Adds partitions to a producer's transaction before it produces to them,
// starting the transaction if none is ongoing; answered by the
// transaction coordinator (package consumergroup/txn) of the
// transactional id, NOT_COORDINATOR elsewhere. Versions 0-3 come from
// clients; version 4 from brokers (KIP-890 part 1): a batch of
// transactions, each of which may only verify that its partitions are in
// the ongoing transaction (VerifyOnly), as Sluice's own produce
// verification asks the coordinator when it runs on another node
// (txn_verify.go).
//
// From brokers, versions 4-5 without VerifyOnly add the partitions, as a
// partition leader does for a transactional Produce v12+ (transaction
// version 2, KIP-890 part 2: the client no longer adds them itself) and
// the group coordinator's node for TxnOffsetCommit v5+.
//
// Version notes: v1 same as v0; v2 PRODUCER_FENCED (KIP-588); v3 flexible;
// v4 batched transactions and VerifyOnly (KIP-890), broker only; v5
// TRANSACTION_ABORTABLE (KIP-890).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAddPartitionsToTxn(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return reply{resp: s.txns.AddPartitionsToTxn(ctx, kreq.(*kmsg.AddPartitionsToTxnRequest))}
}
