package wire

// AddOffsetsToTxn (key 25), versions 0-4.
//
// Adds a consumer group's __consumer_offsets partition to a producer's
// transaction, before the producer commits the group's offsets in it
// (TxnOffsetCommit, to the group coordinator); answered by the
// transaction coordinator (package consumergroup/txn) of the
// transactional id. The transaction's markers then complete those
// offsets there.
//
// Version notes: v1 same as v0; v2 PRODUCER_FENCED (KIP-588); v3
// flexible; v4 TRANSACTION_ABORTABLE (KIP-890), never returned here.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAddOffsetsToTxn(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return reply{resp: s.txns.AddOffsetsToTxn(ctx, kreq.(*kmsg.AddOffsetsToTxnRequest))}
}
