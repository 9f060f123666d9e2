package wire

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/partition"
)

// groupsTopic is the internal topic of the group coordinator: a marker
// written there completes the transaction's offset commits.
const groupsTopic = "__consumer_offsets"

// writeTxnMarker writes marker m to partition index of topic on this node,
// which must lead it, and waits until it is committed. A marker in
// __consumer_offsets then completes the producer's transactional offset
// commits in the group coordinator. Errors are Kafka errors
// (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, the partition's
// refusals) or ctx's.
func (s *Server) writeTxnMarker(ctx context.Context, topic string, index int32, m partition.TxnMarker) error {
	p, err := s.cluster.Partition(topic, index)
	if err != nil {
		return err
	}
	appended, err := p.AppendTxnMarker(ctx, m)
	if err != nil {
		return err
	}
	if err := appended.Wait(ctx); err != nil {
		return err
	}
	if topic == groupsTopic {
		if s.groups == nil {
			return kerr.CoordinatorNotAvailable
		}
		s.groups.CompleteTransaction(index, m.ProducerID, m.ProducerEpoch, m.Commit)
	}
	return nil
}
