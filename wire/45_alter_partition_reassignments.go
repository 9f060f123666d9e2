package wire

// AlterPartitionReassignments (key 45), versions 0-1.
//
// Starts, changes or cancels (null replicas) the reassignment of
// partitions to other brokers (KIP-455): the metadata records the target
// and the partition's Raft leader moves the data while producers go on;
// ListPartitionReassignments shows it until it completes. Only the
// metadata leader answers: elsewhere the top-level error is
// NOT_CONTROLLER. Per partition: UNKNOWN_TOPIC_OR_PARTITION,
// INVALID_REPLICA_ASSIGNMENT (empty list, repeated or unknown broker),
// NO_REASSIGNMENT_IN_PROGRESS (cancel of none), INVALID_REQUEST (a
// partition named twice).
//
// Version notes: v0 flexible; v1 AllowReplicationFactorChange (KIP-860):
// false refuses a target of another size with INVALID_REPLICATION_FACTOR.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterPartitionReassignments(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	allowRF := req.Version < 1 || req.AllowReplicationFactorChange
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	type key struct {
		topic     string
		partition int32
	}
	seen := map[key]int{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			seen[key{rt.Topic, rp.Partition}]++
		}
	}
	notController := false
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			var err error
			if seen[key{rt.Topic, rp.Partition}] > 1 {
				err = fmt.Errorf("partition %s-%d is named more than once in the request: %w", rt.Topic, rp.Partition, kerr.InvalidRequest)
			} else if !notController {
				err = s.cluster.AlterReassignment(ctx, rt.Topic, rp.Partition, rp.Replicas, allowRF)
			}
			if errors.Is(err, kerr.NotController) {
				notController = true
			}
			sp.ErrorCode = s.errorCode(err)
			sp.ErrorMessage = errorMessage(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if notController {
		resp.ErrorCode = kerr.NotController.Code
		msg := "this broker is not the controller (the metadata leader); send the request to the controller Metadata names"
		resp.ErrorMessage = &msg
		resp.Topics = nil
	}
	return reply{resp: resp}
}
