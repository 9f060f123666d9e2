package replication

import (
	"context"
	"errors"

	"github.com/sluice-io/sluice/partition"
)

// errTxnTODO marks the transaction seams of the txnbase branch; each
// helper branch replaces the methods that return it. It must not reach
// main.
var errTxnTODO = errors.New("replication: transactions: not implemented on this branch")

// AppendTxnMarker appends a transaction marker (a control batch ending the
// producer's ongoing transaction on this partition) as the partition's
// leader, like Append: Wait on the result waits for commit.
func (p *Partition) AppendTxnMarker(ctx context.Context, m partition.TxnMarker) (Appended, error) {
	return Appended{}, errTxnTODO
}

// AppendAsCoordinator appends batches a coordinator wrote to its internal
// topic: like Append, but a transactional batch without sequence numbers
// (base sequence -1, as Kafka's coordinators write TxnOffsetCommit
// records) is accepted and joins its producer's transaction.
func (p *Partition) AppendAsCoordinator(ctx context.Context, batches []byte) (Appended, error) {
	return Appended{}, errTxnTODO
}

// Producers returns the state of the partition's active producers
// (DescribeProducers), on its leader.
func (p *Partition) Producers() ([]partition.ProducerState, error) {
	return nil, errTxnTODO
}
