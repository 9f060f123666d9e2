package consumergroup

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

// Locate names the internal topic partition whose leader coordinates key
// and that leader (-1 when none is known), or the error that makes key
// invalid (answered INVALID_REQUEST with its text).
type Locate func(key string) (partition, leader int32, err error)

// AnswerFindCoordinator answers FindCoordinator, batched keys (v4+)
// included, for a coordinator over internal topic topic: each key's
// coordinator is the leader locate names, with its Kafka address from
// brokers; COORDINATOR_NOT_AVAILABLE while no leader is known (an
// election, or a leader not among brokers) or the failure detector holds
// the leader down (replication.Broker.Down), as Kafka never names a fenced
// broker: clients retry. The group, transaction and share coordinators
// all answer through it.
func AnswerFindCoordinator(req *kmsg.FindCoordinatorRequest, topic string, brokers []replication.Broker, locate Locate) *kmsg.FindCoordinatorResponse {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	answer := func(key string) (int32, string, int32, int16, *string) {
		p, leader, err := locate(key)
		if err != nil {
			m := err.Error()
			return -1, "", -1, kerr.InvalidRequest.Code, &m
		}
		for _, b := range brokers {
			if leader >= 0 && b.NodeID == leader {
				if b.Down {
					m := fmt.Sprintf("the leader of %s-%d, node %d, is down", topic, p, leader)
					return -1, "", -1, kerr.CoordinatorNotAvailable.Code, &m
				}
				return b.NodeID, b.Host, b.Port, 0, nil
			}
		}
		m := fmt.Sprintf("no known leader of %s-%d", topic, p)
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code, &m
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			co := kmsg.NewFindCoordinatorResponseCoordinator()
			co.Key = key
			co.NodeID, co.Host, co.Port, co.ErrorCode, co.ErrorMessage = answer(key)
			resp.Coordinators = append(resp.Coordinators, co)
		}
		return resp
	}
	resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage = answer(req.CoordinatorKey)
	return resp
}
