package wire

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/txn"
)

// TransactionCoordinator is what the wire layer needs of the transaction
// coordinator: one method per transaction API it answers (WriteTxnMarkers,
// TxnOffsetCommit and DescribeProducers are answered by partition leaders
// and the group coordinator). Each takes a decoded request whose version is
// set and returns the response of the same version, never nil, with
// outcomes as error codes inside. *txn.Coordinator implements it; it must
// be safe for concurrent use.
type TransactionCoordinator interface {
	// FindCoordinator answers for transactional ids (key type 1).
	FindCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse
	// InitProducerID answers for a transactional id; allocate hands out
	// new producer ids.
	InitProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest, allocate txn.AllocateFunc) *kmsg.InitProducerIDResponse
	AddPartitionsToTxn(ctx context.Context, req *kmsg.AddPartitionsToTxnRequest) *kmsg.AddPartitionsToTxnResponse
	AddOffsetsToTxn(ctx context.Context, req *kmsg.AddOffsetsToTxnRequest) *kmsg.AddOffsetsToTxnResponse
	// EndTxn answers EndTxn; allocate hands out a new producer id when
	// a version 5 end exhausts the epoch.
	EndTxn(ctx context.Context, req *kmsg.EndTxnRequest, allocate txn.AllocateFunc) *kmsg.EndTxnResponse
	DescribeTransactions(ctx context.Context, req *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse
	ListTransactions(ctx context.Context, req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse
}

var (
	_ TransactionCoordinator = (*txn.Coordinator)(nil)
	_ txn.MarkerWriter       = (*Server)(nil)
)
