package wire

// AlterPartition (key 56), versions 0-3.
//
// Between brokers only: a partition's leader tells the controller (the
// metadata leader) that the partition's Raft group now has exactly NewISR
// as voters, which finalises a reassignment whose target that is: the
// metadata then lists those replicas in the target's order and the nodes
// that left delete their copy. In Kafka the same request reports ISR
// changes; here Raft keeps the in-sync set itself, so a report that ends
// no reassignment is answered NO_REASSIGNMENT_IN_PROGRESS (or
// INVALID_REPLICA_ASSIGNMENT for another target) and changes nothing.
// BrokerID must be a registered node (BROKER_ID_NOT_REGISTERED otherwise);
// elsewhere than on the controller the top-level error is NOT_CONTROLLER.
//
// Version notes: v0 flexible; v1 LeaderRecoveryState; v2 topic ids in
// place of names (unknown ids: UNKNOWN_TOPIC_ID); v3 NewEpochISR carries
// the broker epochs with the ids (the epochs are not checked).

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterPartition(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.AlterPartitionRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionResponseTopic()
		st.Topic, st.TopidID = rt.Topic, rt.TopicID
		name := rt.Topic
		var topicErr error
		if req.Version >= 2 {
			if t, ok := s.cluster.TopicByID(rt.TopicID); ok {
				name = t.Name()
			} else {
				topicErr = kerr.UnknownTopicID
			}
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderID = req.BrokerID
			sp.LeaderEpoch = rp.LeaderEpoch
			sp.PartitionEpoch = rp.PartitionEpoch
			target := rp.NewISR
			if req.Version >= 3 {
				target = make([]int32, 0, len(rp.NewEpochISR))
				for _, e := range rp.NewEpochISR {
					target = append(target, e.BrokerID)
				}
			}
			err := topicErr
			if err == nil {
				err = s.cluster.CompleteReassignment(ctx, req.BrokerID, name, rp.Partition, target)
			}
			if errors.Is(err, kerr.NotController) {
				resp.ErrorCode = kerr.NotController.Code
				resp.Topics = nil
				return reply{resp: resp}
			}
			sp.ErrorCode = s.errorCode(err)
			sp.ISR = target
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return reply{resp: resp}
}
