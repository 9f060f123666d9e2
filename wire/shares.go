package wire

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup/share"
)

// ShareGroups is the share-group data plane ShareFetch and
// ShareAcknowledge serve (a *share.Manager): share-partitions on the data
// partitions' leader and share sessions.
type ShareGroups interface {
	Sessions() *share.Sessions
	Acquire(ctx context.Context, group, member string, t share.Target, req share.AcquireRequest) (share.Acquired, error)
	Acknowledge(ctx context.Context, group, member string, t share.Target, acks []share.AckBatch, renewAllowed bool) error
	ReleaseMember(ctx context.Context, group, member string, t share.Target) error
	// Changed returns a channel closed when records of group become
	// available again (released, lock expired).
	Changed(group string) <-chan struct{}
	LockDuration(group string) time.Duration
}

var _ ShareGroups = (*share.Manager)(nil)

// shareReleaseTimeout bounds the release of a closed connection's share
// sessions' records; past it their locks expire as usual.
const shareReleaseTimeout = 10 * time.Second

// maxShareMemberIDLength bounds a member id, as Kafka does (a UUID is 22
// or 36 characters).
const maxShareMemberIDLength = 36

// shareTarget resolves a share request's partition: the topic by id, this
// node's handle of the partition. Errors: UNKNOWN_TOPIC_ID,
// UNKNOWN_TOPIC_OR_PARTITION.
func (s *Server) shareTarget(tp share.TopicPartition) (share.Target, Partition, error) {
	topic, ok := s.cluster.TopicByID(tp.TopicID)
	if !ok {
		return share.Target{}, nil, kerr.UnknownTopicID
	}
	p, err := s.cluster.Partition(topic.Name(), tp.Partition)
	if err != nil {
		return share.Target{}, nil, err
	}
	return share.Target{TopicID: tp.TopicID, Topic: topic.Name(), Partition: tp.Partition, Data: p}, p, nil
}

// shareAckBatches converts acknowledgement batches of a request. Types
// are checked by the share-partition (INVALID_REQUEST).
func shareAckBatches[B any](in []B, get func(*B) (first, last int64, types []int8)) []share.AckBatch {
	out := make([]share.AckBatch, 0, len(in))
	for i := range in {
		first, last, types := get(&in[i])
		b := share.AckBatch{First: first, Last: last, Types: make([]share.AckType, len(types))}
		for j, t := range types {
			b.Types[j] = share.AckType(t)
		}
		out = append(out, b)
	}
	return out
}

// shareAckResult is the outcome of one partition's acknowledgements.
type shareAckResult struct {
	tp   share.TopicPartition
	err  error
	part Partition // for a NOT_LEADER_OR_FOLLOWER's current leader
}

// acknowledgeShare applies one partition's acknowledgements.
func (s *Server) acknowledgeShare(ctx context.Context, group, member string, tp share.TopicPartition, acks []share.AckBatch, renew bool) shareAckResult {
	t, p, err := s.shareTarget(tp)
	if err == nil {
		err = s.shares.Acknowledge(ctx, group, member, t, acks, renew)
	}
	return shareAckResult{tp: tp, err: err, part: p}
}

// releaseShare releases member's records in every partition of a closed
// session; errors are logged (the locks expire anyway).
func (s *Server) releaseShare(ctx context.Context, group, member string, parts []share.TopicPartition) {
	for _, tp := range parts {
		t, _, err := s.shareTarget(tp)
		if err == nil {
			err = s.shares.ReleaseMember(ctx, group, member, t)
		}
		if err != nil {
			s.logger.Debug("release share records of a closed session failed", zap.String("group", group), zap.String("member", member), zap.Int32("partition", tp.Partition), zap.Error(err))
		}
	}
}
