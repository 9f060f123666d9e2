package wire

// ShareAcknowledge (key 79), versions 1-2.
//
// KIP-932, KIP-1222.
//
// Applies a share consumer's acknowledgements outside a ShareFetch:
// accept (1), release (2), reject (3), gap (0, offsets without a record),
// and from v2 with IsRenewAck renew (4), which extends the acquisition
// lock. Each partition's acknowledgements are applied by its
// share-partition on this node (the partition's leader) and persisted at
// the share coordinator before the response; a release or reject that
// exhausts a record dead-letters it first when the group has a dead-letter
// topic (KIP-1191).
//
// The session epoch must follow the previous request's (the session's
// partitions do not change); -1 applies the acknowledgements, then closes
// the session and releases the member's remaining acquired records.
// Errors (top level): SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH
// (epoch 0 too), INVALID_REQUEST (no group or member id). Per partition:
// INVALID_RECORD_STATE (an offset not acquired by the member),
// INVALID_REQUEST (bad types), UNKNOWN_TOPIC_ID,
// NOT_LEADER_OR_FOLLOWER with CurrentLeader and NodeEndpoints.
//
// Version notes: v1 is Kafka 4.1's first GA version; v2 IsRenewAck and
// AcquisitionLockTimeoutMillis (KIP-1222). Version 0 is not served.

import (
	"context"
	"errors"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/share"
)

func handleShareAcknowledge(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ShareAcknowledgeRequest)
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	fail := func(err *kerr.Error) reply {
		resp.ErrorCode = err.Code
		return reply{resp: resp}
	}
	var group, member string
	if req.GroupID != nil {
		group = *req.GroupID
	}
	if req.MemberID != nil {
		member = *req.MemberID
	}
	if group == "" || member == "" || len(member) > maxShareMemberIDLength {
		return fail(kerr.InvalidRequest)
	}
	resp.AcquisitionLockTimeoutMillis = int32(min(s.shares.LockDuration(group).Milliseconds(), math.MaxInt32))
	renew := req.Version >= 2 && req.IsRenewAck
	key := share.SessionKey{Group: group, Member: member}
	var closed []share.TopicPartition
	if req.ShareSessionEpoch == -1 {
		parts, err := s.shares.Sessions().Close(key)
		if err != nil {
			return fail(kerr.ShareSessionNotFound)
		}
		closed = parts
	} else if err := s.shares.Sessions().Acknowledge(key, req.ShareSessionEpoch); err != nil {
		var ke *kerr.Error
		if errors.As(err, &ke) {
			return fail(ke)
		}
		return fail(kerr.UnknownServerError)
	}
	var acks []shareAcks
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			acks = append(acks, shareAcks{
				tp: share.TopicPartition{TopicID: rt.TopicID, Partition: rp.Partition},
				batches: shareAckBatches(rp.AcknowledgementBatches, func(b *kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch) (int64, int64, []int8) {
					return b.FirstOffset, b.LastOffset, b.AcknowledgeTypes
				}),
			})
		}
	}
	return reply{finish: func(ctx context.Context) kmsg.Response {
		var leaders []int32
		for _, a := range acks {
			r := s.acknowledgeShare(ctx, group, member, a.tp, a.batches, renew)
			i := len(resp.Topics) - 1
			if i < 0 || resp.Topics[i].TopicID != a.tp.TopicID {
				t := kmsg.NewShareAcknowledgeResponseTopic()
				t.TopicID = a.tp.TopicID
				resp.Topics = append(resp.Topics, t)
				i++
			}
			p := kmsg.NewShareAcknowledgeResponseTopicPartition()
			p.Partition = a.tp.Partition
			p.ErrorCode = s.errorCode(r.err)
			p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = -1, -1
			if node, epoch, ok := currentLeader(r.part, p.ErrorCode); ok {
				p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = node, epoch
				leaders = append(leaders, node)
			}
			resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, p)
		}
		if closed != nil {
			s.releaseShare(ctx, group, member, closed)
		}
		for _, b := range s.endpoints(leaders) {
			resp.NodeEndpoints = append(resp.NodeEndpoints, kmsg.ShareAcknowledgeResponseNodeEndpoint{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
		}
		return resp
	}}
}
