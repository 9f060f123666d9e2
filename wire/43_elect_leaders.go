package wire

// ElectLeaders (key 43), versions 0-2.
//
// Preferred leader election (KIP-183): each partition's leadership moves
// to its preferred replica, the first of its replicas, through a Raft
// leadership transfer on the partition's leader (the preferred replica is
// brought up to date first). Any node answers: a node that does not lead
// a partition asks its leader (over the Kafka protocol, client id
// PeerClientID; such a request is not passed on again). Null topics means
// every partition, and then partitions whose preferred replica leads
// already are left out of the response, as Kafka does. Per partition:
// ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE (not in sync, still
// being added, or the transfer failed), UNKNOWN_TOPIC_OR_PARTITION,
// NOT_LEADER_OR_FOLLOWER (no leader reachable).
//
// Deviation: unclean election (ElectionType 1, v1+) is INVALID_REQUEST
// for every partition: a Raft group elects only a replica holding every
// committed record, so there is nothing unclean to allow.
//
// Version notes: v1 ElectionType and a top-level error code (KIP-460); v2
// flexible.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// electionUnclean is ElectLeaders' ElectionType for unclean elections.
const electionUnclean = 1

func handleElectLeaders(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	forwarded := requestClientFrom(ctx).id == PeerClientID
	topics := req.Topics
	all := topics == nil
	if all {
		for _, t := range s.cluster.Topics() {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic = t.Name()
			for i := range t.PartitionCount() {
				rt.Partitions = append(rt.Partitions, i)
			}
			topics = append(topics, rt)
		}
	}
	for _, rt := range topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		for _, partition := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = partition
			var err error
			if req.Version >= 1 && req.ElectionType == electionUnclean {
				msg := "unclean leader election is not supported: a partition's Raft group elects only a replica holding every committed record"
				sp.ErrorCode, sp.ErrorMessage = kerr.InvalidRequest.Code, &msg
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			err = s.cluster.ElectPreferred(ctx, rt.Topic, partition, forwarded)
			sp.ErrorCode = s.errorCode(err)
			sp.ErrorMessage = errorMessage(err)
			if all && sp.ErrorCode == kerr.ElectionNotNeeded.Code {
				continue
			}
			st.Partitions = append(st.Partitions, sp)
		}
		if !all || len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	return reply{resp: resp}
}
