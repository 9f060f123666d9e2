package wire

// EndTxn (key 26), versions 0-5.
//
// Commits or aborts a producer's transaction; answered by the transaction
// coordinator (package consumergroup/txn) of the transactional id once
// the prepared state is durable. The coordinator then writes the markers
// on every partition of the transaction (txn_send_markers.go) and stores
// the completed state; meanwhile the id's requests answer
// CONCURRENT_TRANSACTIONS, which clients retry.
//
// Version 5 is transaction version 2 (KIP-890 part 2, finalized in
// ApiVersions): each end bumps the producer epoch, the markers carry the
// bumped epoch, and the response carries the producer id and epoch the
// client continues with (a new producer id at epoch 0 when the epoch is
// exhausted); an abort with no transaction under way is allowed.
//
// Version notes: v1 same as v0; v2 PRODUCER_FENCED (KIP-588); v3
// flexible; v4 TRANSACTION_ABORTABLE (KIP-890), never returned here; v5
// new producer id and epoch in the response.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleEndTxn(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return reply{resp: s.txns.EndTxn(ctx, kreq.(*kmsg.EndTxnRequest), s.allocateProducerID)}
}
