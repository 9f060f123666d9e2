package wire

// BrokerRegistration (key 62), versions 0-4.
//
// Between brokers only (advertised to, and answered for, clients with
// forwardClientPrefix, as PeerClientID; CLUSTER_AUTHORIZATION_FAILED to
// anyone else): a node started with cluster.join asks the
// controller (the metadata leader) to add it to the cluster. Listeners
// must name the node's Raft address as a listener called "RAFT" and its
// Kafka address as any other (the first is taken). The controller
// registers the node and adds it to the metadata group as a voter; the
// node then learns the metadata from the group's log. Errors:
// NOT_CONTROLLER elsewhere than on the controller, INCONSISTENT_CLUSTER_ID
// for a node of another cluster, DUPLICATE_BROKER_REGISTRATION for an id
// or Raft address already another node's, INVALID_REQUEST for missing
// listeners. Registering again with the same id and addresses succeeds
// (a retry is safe).
//
// Deviations: BrokerEpoch is always 0 (Sluice fences nothing by epoch);
// Features, IncarnationID and LogDirs are ignored.
//
// Version notes: v0 flexible; v1 IsMigratingZkBroker; v2 LogDirs; v3
// PreviousBrokerEpoch; v4 is the same as v3.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/meta"
)

// RaftListenerName is the BrokerRegistration listener that carries a
// joining node's Raft address.
const RaftListenerName = "RAFT"

func handleBrokerRegistration(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.BrokerRegistrationRequest)
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	if !isForwarded(ctx) {
		// Only a joining node's peer client (PeerClientID) registers.
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return reply{resp: resp}
	}
	node := meta.Member{ID: req.BrokerID}
	if req.Rack != nil {
		node.Rack = *req.Rack
	}
	for _, l := range req.Listeners {
		switch {
		case l.Name == RaftListenerName:
			node.RaftAddress = fmt.Sprintf("%s:%d", l.Host, l.Port)
		case node.Host == "":
			node.Host, node.Port = l.Host, int32(l.Port)
		}
	}
	var err error
	if node.RaftAddress == "" || node.Host == "" {
		err = fmt.Errorf("broker %d registered without a %s listener and a Kafka listener: %w", req.BrokerID, RaftListenerName, kerr.InvalidRequest)
	} else {
		err = s.cluster.JoinNode(ctx, req.ClusterID, node)
	}
	resp.ErrorCode = s.errorCode(err)
	return reply{resp: resp}
}
