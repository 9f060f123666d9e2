package wire

// ListTransactions (key 66), versions 0-2.
//
// Lists the transactional ids this node coordinates (KIP-664), filtered
// by state, producer id, minimum duration (v1, KIP-994) and id pattern
// (v2, re2 syntax; INVALID_REGULAR_EXPRESSION when it does not compile);
// answered by the transaction coordinator (package consumergroup/txn).
// Admin clients send it to every broker and merge the answers.
//
// Version notes: v1 DurationFilterMillis; v2 TransactionalIDPattern.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListTransactions(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return reply{resp: s.txns.ListTransactions(ctx, kreq.(*kmsg.ListTransactionsRequest))}
}
