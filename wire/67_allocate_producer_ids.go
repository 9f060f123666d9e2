package wire

// AllocateProducerIds (key 67), versions 0-0.
//
// Reserves a block of producer ids for the requesting node, on the
// metadata leader: a node that is not the leader sends it when its own
// block is used up (InitProducerId, 22_init_producer_id.go). It is an API
// between nodes (KIP-730): it is answered only for another node's
// forwarder (client id "sluice-forward-<id>") naming a registered node
// as BrokerID, and advertised only to such forwarders. Anyone else gets
// CLUSTER_AUTHORIZATION_FAILED; a node that is not the leader answers
// NOT_CONTROLLER. BrokerEpoch is not checked: Sluice has no broker
// epochs.
//
// Version notes: v0 is the only version (flexible).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAllocateProducerIDs(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.AllocateProducerIDsRequest)
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	if !isForwarded(ctx) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return reply{resp: resp}
	}
	block, err := s.cluster.AllocateProducerIDBlock(ctx, req.BrokerID)
	if err != nil {
		resp.ErrorCode = s.errorCode(err)
		return reply{resp: resp}
	}
	resp.ProducerIDStart, resp.ProducerIDLen = block.First, block.Size
	return reply{resp: resp}
}
