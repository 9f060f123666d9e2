package wire

// AlterPartition (key 56), versions 2-3.
//
// Between nodes only: a partition leader reports the partitions it
// started leading, with their leader epochs, to the metadata leader,
// which records them in the metadata (replication.Cluster.RecordLeaders),
// so that nodes holding no replica of a partition name its real leader
// in Metadata. Kafka's brokers send AlterPartition to the controller to
// change a partition's ISR; here BrokerID is the reporting leader and
// LeaderEpoch the epoch (Raft term) it leads in; the ISR fields, the
// partition epoch and the recovery state are ignored (Sluice's ISR is the
// Raft group's). Only versions with topic ids are served.
//
// It is answered only for another node's forwarder (client id
// "sluice-forward-<id>") and advertised only to such forwarders; anyone
// else, or a BrokerID that is not a registered node, gets
// CLUSTER_AUTHORIZATION_FAILED; a node that is not the metadata leader
// answers NOT_CONTROLLER. Each partition's answer names the reported
// leader and epoch; stale reports (a later election already recorded)
// are accepted and skipped.
//
// Version notes: v1 LeaderRecoveryState (KIP-704); v2 topic ids; v3 ISR
// members with broker epochs (KIP-903).

import (
	"context"
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
	var changes []replication.LeaderChange
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionResponseTopic()
		st.TopidID = rt.TopicID
		for _, rp := range rt.Partitions {
			changes = append(changes, replication.LeaderChange{TopicID: rt.TopicID, Partition: rp.Partition, Leader: req.BrokerID, Epoch: rp.LeaderEpoch})
			sp := kmsg.NewAlterPartitionResponseTopicPartition()
			sp.Partition, sp.LeaderID, sp.LeaderEpoch = rp.Partition, req.BrokerID, rp.LeaderEpoch
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if _, err := s.cluster.RecordLeaders(ctx, req.BrokerID, changes); err != nil {
		resp.ErrorCode = s.errorCode(err)
		resp.Topics = nil
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
