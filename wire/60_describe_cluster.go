package wire

// DescribeCluster (key 60), versions 0-2.
//
// Answers the cluster id, the controller (the metadata Raft group's leader,
// -1 while none is known) and the live brokers registered in the cluster
// metadata with their advertised address and rack, as Metadata lists them.
// A broker this node's failure detector holds down counts as fenced, as
// Kafka fences a broker that stops heartbeating: it is left out unless
// the request asks for fenced brokers too (IncludeFencedBrokers, v2+),
// which lists it with IsFenced set (`sluice cluster status` asks so, to
// show such a node down). A controller held down is answered as -1.
// Admin clients (kadm.DescribeCluster, kafka-cluster.sh, AdminClient's
// describeCluster) use it instead of Metadata. Sluice has no ACLs, so the
// cluster authorized operations, when asked for, are every operation.
//
// A request for controller endpoints (EndpointType 2, v1+) is
// UNSUPPORTED_ENDPOINT_TYPE, as a Kafka broker answers it: Sluice's
// controllers are its brokers, reached at the same addresses.
//
// Version notes: v0 (KIP-700); v1 endpoint type (KIP-919); v2 include
// fenced brokers (KIP-1073).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// endpointTypeController is DescribeCluster's EndpointType for controller
// endpoints (1 is brokers).
const endpointTypeController = 2

func handleDescribeCluster(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType == endpointTypeController {
		resp.EndpointType = req.EndpointType
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "Sluice's controllers are its brokers: ask for broker endpoints (EndpointType 1)"
		resp.ErrorMessage = &msg
		return reply{resp: resp}
	}
	resp.ClusterID = s.cluster.ClusterID()
	resp.ControllerID = s.cluster.ControllerID()
	for _, b := range s.cluster.Brokers() {
		if b.NodeID == resp.ControllerID && b.Down {
			// A fenced controller is none: clients ask again.
			resp.ControllerID = -1
		}
		if b.Down && !req.IncludeFencedBrokers {
			continue
		}
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack, rb.IsFenced = b.NodeID, b.Host, b.Port, b.Rack, b.Down
		resp.Brokers = append(resp.Brokers, rb)
	}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = allClusterOperations
	}
	return reply{resp: resp}
}
