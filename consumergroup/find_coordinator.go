package consumergroup

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator key types of FindCoordinator.
const (
	coordinatorTypeGroup       = 0
	coordinatorTypeTransaction = 1
)

// FindCoordinator answers for group keys (key type 0): this node, for the
// group's partition hash(group) mod OffsetsTopicPartitions. Transaction
// keys (type 1) are COORDINATOR_NOT_AVAILABLE until transactions exist;
// other key types are INVALID_REQUEST. Handles batched keys (v4+). An
// empty group key is answered like any other (Kafka maps it to partition
// 0). After Close every key is COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) FindCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version <= 3 {
		keys = []string{req.CoordinatorKey}
	}
	closed := !c.enter()
	if !closed {
		defer c.wg.Done()
	}
	for _, key := range keys {
		sc := kmsg.NewFindCoordinatorResponseCoordinator()
		sc.Key = key
		sc.NodeID = -1
		switch {
		case req.CoordinatorType == coordinatorTypeTransaction:
			sc.ErrorCode = kerr.CoordinatorNotAvailable.Code
		case req.CoordinatorType != coordinatorTypeGroup:
			sc.ErrorCode = kerr.InvalidRequest.Code
		case closed:
			sc.ErrorCode = kerr.CoordinatorNotAvailable.Code
		default:
			// On a single node this node leads every partition. With
			// replication: the leader of partitionFor(key).
			_ = c.partitionFor(key)
			b := c.cluster.Brokers()
			for _, br := range b {
				if br.NodeID == c.cluster.NodeID() {
					sc.NodeID, sc.Host, sc.Port = br.NodeID, br.Host, br.Port
				}
			}
			if sc.NodeID < 0 {
				sc.ErrorCode = kerr.CoordinatorNotAvailable.Code
			}
		}
		if sc.ErrorCode != 0 {
			sc.NodeID, sc.Host, sc.Port = -1, "", -1
			msg := kerr.ErrorForCode(sc.ErrorCode).(*kerr.Error).Description
			sc.ErrorMessage = &msg
		}
		resp.Coordinators = append(resp.Coordinators, sc)
	}
	if req.Version <= 3 {
		sc := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage = sc.ErrorCode, sc.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = sc.NodeID, sc.Host, sc.Port
		resp.Coordinators = nil
	}
	return resp
}
