package wire

// AlterPartition (key 56), versions 0-3.
//
// Between nodes only: a partition's Raft leader tells the metadata leader
// (Kafka's controller) about the partition, for one of two things:
//
//   - With an empty ISR (NewISR, or NewEpochISR from v3): it started
//     leading at LeaderEpoch (the Raft term). The election is recorded
//     in the metadata (replication.Cluster.RecordLeaders), so nodes that
//     hold no replica of the partition name its real leader in Metadata;
//     a stale report (a later election already recorded) is accepted and
//     skipped. Sent in batches by ReportLeaders.
//   - With an ISR: the partition's Raft group now has exactly those
//     voters, which finalises a reassignment whose target that is: the
//     metadata then lists those replicas in the target's order and the
//     nodes that left delete their copy. In Kafka the same request
//     reports ISR changes; here Raft keeps the in-sync set itself, so a
//     report that ends no reassignment is NO_REASSIGNMENT_IN_PROGRESS (or
//     INVALID_REPLICA_ASSIGNMENT for another target) and changes nothing.
//
// It is answered only for another node (a client id with
// forwardClientPrefix, as a node's forwarder and PeerClientID send) and
// advertised only to such clients; anyone else gets
// CLUSTER_AUTHORIZATION_FAILED. BrokerID must be a registered node. A
// node that is not the metadata leader answers NOT_CONTROLLER.
//
// Version notes: v0 flexible; v1 LeaderRecoveryState; v2 topic ids in
// place of names (unknown ids: UNKNOWN_TOPIC_ID); v3 NewEpochISR carries
// the broker epochs with the ids (the epochs are not checked).

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

func handleAlterPartition(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.AlterPartitionRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	if !isForwarded(ctx) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return reply{resp: resp}
	}
	// Leader reports are recorded together, after the loop; their
	// answers are filled in then.
	var reports []replication.LeaderChange
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionResponseTopic()
		st.Topic, st.TopidID = rt.Topic, rt.TopicID
		name, id := rt.Topic, rt.TopicID
		var topicErr error
		if req.Version >= 2 {
			if t, ok := s.cluster.TopicByID(rt.TopicID); ok {
				name = t.Name()
			} else {
				topicErr = kerr.UnknownTopicID
			}
		} else if t, ok := s.cluster.Topic(rt.Topic); ok {
			id = t.ID()
		} else {
			topicErr = kerr.UnknownTopicOrPartition
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
			if len(target) == 0 && topicErr == nil {
				reports = append(reports, replication.LeaderChange{TopicID: id, Partition: rp.Partition, Leader: req.BrokerID, Epoch: rp.LeaderEpoch})
				st.Partitions = append(st.Partitions, sp)
				continue
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
	if len(reports) > 0 {
		// A report is all or nothing: a failure is the request's error,
		// and the reporting node sends the batch again.
		if _, err := s.cluster.RecordLeaders(ctx, req.BrokerID, reports); err != nil {
			resp.ErrorCode = s.errorCode(err)
			resp.Topics = nil
		}
	}
	return reply{resp: resp}
}

// ReportLeaders sends a batch of this node's elections to the metadata
// leader, node leader, with AlterPartition (a
// replication.RecordLeadersFunc: cmd/sluice installs it with
// Cluster.SetLeaderReports). It fails once Shutdown has begun.
func (s *Server) ReportLeaders(ctx context.Context, leader int32, changes []replication.LeaderChange) error {
	ctx, cancel := s.forwardContext(ctx, 0)
	defer cancel()
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID = s.cluster.NodeID()
	at := map[[16]byte]int{}
	for _, ch := range changes {
		i, ok := at[ch.TopicID]
		if !ok {
			i = len(req.Topics)
			at[ch.TopicID] = i
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.TopicID = ch.TopicID
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch = ch.Partition, ch.Epoch
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	kresp, err := s.forward(ctx, leader, req)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(kresp.(*kmsg.AlterPartitionResponse).ErrorCode); err != nil {
		return fmt.Errorf("node %d refused a report of %d partition leaders: %w", leader, len(changes), err)
	}
	return nil
}
