package wire

// CreatePartitions (key 37), versions 0-3.
//
// Grows a topic's partition count. Shrinking, or asking for the current
// count, is INVALID_PARTITIONS; an assignment must place every new
// partition on this node alone (else INVALID_REPLICA_ASSIGNMENT). A topic
// named twice is INVALID_REQUEST. ValidateOnly checks without changing.
//
// Any node answers: on a node that is not the metadata leader, the topics
// answered NOT_CONTROLLER are forwarded to the leader (forward_admin.go),
// its per-topic answers relayed, and the new partitions awaited in this
// node's view before the response.
//
// Version notes: v1 throttle; v2 flexible; v3 is the same as v2.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreatePartitions(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	node := s.cluster.NodeID()
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		if seen[rt.Topic] > 1 {
			err = fmt.Errorf("topic %q is named more than once in the request: %w", rt.Topic, kerr.InvalidRequest)
		}
		for _, a := range rt.Assignment {
			if err == nil && (len(a.Replicas) != 1 || a.Replicas[0] != node) {
				err = fmt.Errorf("replicas %v; this cluster has only broker %d: %w", a.Replicas, node, kerr.InvalidReplicaAssignment)
			}
		}
		if err == nil {
			err = s.cluster.CreatePartitions(ctx, rt.Topic, rt.Count, req.ValidateOnly)
		}
		st.ErrorCode = s.errorCode(err)
		st.ErrorMessage = errorMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	s.forwardCreatePartitions(ctx, req, resp)
	return reply{resp: resp}
}
