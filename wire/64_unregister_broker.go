package wire

// UnregisterBroker (key 64), versions 0-0.
//
// Removes a node from the cluster (KIP-631): it is marked leaving,
// forgotten by the metadata, and removed from the metadata Raft group.
// A node still holding replicas is refused with REASSIGNMENT_IN_PROGRESS
// and a message: move its replicas first (`sluice cluster remove-node`
// moves them, then sends this). An unknown node is
// BROKER_ID_NOT_REGISTERED; elsewhere than on the controller the error
// is NOT_CONTROLLER.
//
// Version notes: v0 is flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleUnregisterBroker(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.UnregisterBrokerRequest)
	resp := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
	err := s.cluster.RemoveNode(ctx, req.BrokerID)
	resp.ErrorCode = s.errorCode(err)
	resp.ErrorMessage = errorMessage(err)
	return reply{resp: resp}
}
