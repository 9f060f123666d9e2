package wire

// DescribeTransactions (key 65), versions 0-0.
//
// Describes transactional ids (KIP-664): state, producer id and epoch,
// timeout, start time and partitions of the ongoing transaction; answered
// by the transaction coordinator (package consumergroup/txn), each id
// NOT_COORDINATOR on a node that does not coordinate it
// (TRANSACTIONAL_ID_NOT_FOUND for an unknown id). Admin clients send it
// to each id's coordinator.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeTransactions(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return reply{resp: s.txns.DescribeTransactions(ctx, kreq.(*kmsg.DescribeTransactionsRequest))}
}
