package replication

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/raftgroup"
)

// AppendTxnMarker appends transaction marker m (a control batch the leader
// builds, ending producer m.ProducerID's ongoing transaction on this
// partition) as the partition's leader, like Append: Wait on the result
// waits for commit. Errors: NOT_LEADER_OR_FOLLOWER, ctx's,
// INVALID_PRODUCER_EPOCH for an epoch below the producer's,
// TRANSACTION_COORDINATOR_FENCED for a coordinator epoch below that of the
// producer's last marker (both checked again when the marker applies, and
// then returned by Wait), and Propose's other errors.
func (p *Partition) AppendTxnMarker(ctx context.Context, m partition.TxnMarker) (Appended, error) {
	return p.propose(ctx, func(g *raftgroup.Group) (*raftgroup.Proposal, error) { return g.ProposeMarker(m) })
}

// AppendAsCoordinator appends batches a coordinator wrote to its internal
// topic: like Append, but a transactional batch without sequence numbers
// (base sequence -1, as Kafka's coordinators write TxnOffsetCommit
// records) is accepted and joins its producer's transaction, so that the
// producer's marker ends it and the LSO waits for it.
func (p *Partition) AppendAsCoordinator(ctx context.Context, batches []byte) (Appended, error) {
	return p.propose(ctx, func(g *raftgroup.Group) (*raftgroup.Proposal, error) { return g.ProposeAsCoordinator(batches) })
}

// AppendAsCoordinatorVerified is AppendAsCoordinator for a coordinator's
// transactional batch verified with guard (StartTxnVerification, then the
// transaction coordinator), as TxnOffsetCommit's records are: a batch
// that would begin its producer's transaction after a marker ended the
// verification is refused with INVALID_TXN_STATE, with nothing stored
// (the hanging-transaction guard, KIP-890).
func (p *Partition) AppendAsCoordinatorVerified(ctx context.Context, batches []byte, guard uint64) (Appended, error) {
	return p.propose(ctx, func(g *raftgroup.Group) (*raftgroup.Proposal, error) {
		return g.ProposeVerifiedAsCoordinator(batches, guard)
	})
}

// StartTxnVerification starts the verification of a transactional
// produce of producerID at epoch (bumpsEpoch: transaction version 2) on
// the partition's leader, before its transaction coordinator is asked:
// the guard to pass to AppendVerified, 0 when the producer's transaction
// is under way here already (see partition.Replica.StartTxnVerification).
// NOT_LEADER_OR_FOLLOWER elsewhere.
func (p *Partition) StartTxnVerification(producerID int64, epoch int16, bumpsEpoch bool) (uint64, error) {
	if p.group == nil {
		return 0, kerr.NotLeaderForPartition
	}
	return p.group.StartTxnVerification(producerID, epoch, bumpsEpoch)
}

// AppendVerified is Append for the batches of a transactional produce
// verified with guard: a batch that would begin its producer's
// transaction after a marker ended the verification is refused with
// INVALID_TXN_STATE, with nothing stored (the hanging-transaction guard,
// KIP-890).
func (p *Partition) AppendVerified(ctx context.Context, batches []byte, guard uint64) (Appended, error) {
	return p.propose(ctx, func(g *raftgroup.Group) (*raftgroup.Proposal, error) { return g.ProposeVerified(batches, guard) })
}

// propose runs a proposal on the partition's group, as Append does.
func (p *Partition) propose(ctx context.Context, propose func(*raftgroup.Group) (*raftgroup.Proposal, error)) (Appended, error) {
	if err := ctx.Err(); err != nil {
		return Appended{}, err
	}
	if p.group == nil {
		return Appended{}, kerr.NotLeaderForPartition
	}
	prop, err := propose(p.group)
	if err != nil {
		return Appended{}, err
	}
	return Appended{AppendResult: prop.Result, proposal: prop}, nil
}

// Producers returns the state of the partition's producers
// (DescribeProducers), by ascending producer id, on its leader; elsewhere
// NOT_LEADER_OR_FOLLOWER.
func (p *Partition) Producers() ([]partition.ProducerState, error) {
	r, err := p.serving()
	if err != nil {
		return nil, err
	}
	return r.Producers()
}
