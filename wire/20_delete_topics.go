package wire

// DeleteTopics (key 20), versions 0-6.
//
// Deletes topics by name, or by id (v6+). The topic is forgotten durably
// before its data is removed. Unknown names are UNKNOWN_TOPIC_OR_PARTITION,
// unknown ids UNKNOWN_TOPIC_ID.
//
// Any node answers: on a node that is not the metadata leader, the topics
// answered NOT_CONTROLLER are forwarded to the leader (forward_admin.go),
// its per-topic answers relayed, and the deleted topics awaited gone from
// this node's view before the response.
//
// Version notes: v1 throttle; v4 flexible; v5 error messages; v6 topics by
// name or id (KIP-516).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteTopics(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	if req.Version < 6 {
		targets = nil
		for _, name := range req.TopicNames {
			name := name
			targets = append(targets, kmsg.DeleteTopicsRequestTopic{Topic: &name})
		}
	}
	for _, rt := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var err error
		switch {
		case rt.Topic != nil:
			if t, ok := s.cluster.Topic(*rt.Topic); ok {
				st.TopicID = t.ID()
			}
			err = s.cluster.DeleteTopic(ctx, *rt.Topic)
		case rt.TopicID != [16]byte{}:
			t, ok := s.cluster.TopicByID(rt.TopicID)
			if !ok {
				err = kerr.UnknownTopicID
				break
			}
			name := t.Name()
			st.Topic = &name
			err = s.cluster.DeleteTopic(ctx, name)
		default:
			err = kerr.InvalidRequest
		}
		st.ErrorCode = s.errorCode(err)
		st.ErrorMessage = errorMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	s.forwardDeleteTopics(ctx, req, targets, resp)
	return reply{resp: resp}
}
