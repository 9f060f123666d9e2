package wire

// CreateTopics (key 19), versions 0-7.
//
// Creates each topic with its partition count (-1: num.partitions, v4+),
// replication factor (-1 or 1 on a single node; more is
// INVALID_REPLICATION_FACTOR) and config overrides (Kafka names, validated:
// a bad one is INVALID_CONFIG with a message). A manual replica assignment
// is accepted only when every partition's replicas are exactly this node.
// A topic named twice in one request is INVALID_REQUEST. ValidateOnly (v1+)
// checks without creating.
//
// Any node answers: on a node that is not the metadata leader, the topics
// answered NOT_CONTROLLER are forwarded to the leader (forward_admin.go),
// its per-topic answers relayed, and the created topics awaited in this
// node's view before the response.
//
// Version notes: v1 ValidateOnly and error messages; v2 throttle; v4
// default partitions and replication factor (KIP-464); v5 flexible, and the
// response describes the created topic's configs (KIP-525); v7 topic ids.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

func handleCreateTopics(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		t, err := s.createTopic(ctx, rt, req.ValidateOnly, seen[rt.Topic] > 1)
		if err != nil {
			st.ErrorCode = s.errorCode(err)
			st.ErrorMessage = errorMessage(err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = t.ID()
		st.NumPartitions = t.PartitionCount()
		st.ReplicationFactor = 1
		if req.Version >= 5 {
			entries, err := s.cluster.DescribeTopicConfigs(t.Name())
			if req.ValidateOnly {
				entries, err = nil, nil
			}
			if err != nil {
				st.ConfigErrorCode = s.errorCode(err)
			}
			for _, e := range entries {
				c := kmsg.NewCreateTopicsResponseTopicConfig()
				value := e.Value
				c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = e.Name, &value, e.ReadOnly, int8(e.Source), e.Sensitive
				st.Configs = append(st.Configs, c)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	s.forwardCreateTopics(ctx, req, resp)
	return reply{resp: resp}
}

func (s *Server) createTopic(ctx context.Context, rt kmsg.CreateTopicsRequestTopic, validateOnly, duplicate bool) (Topic, error) {
	if duplicate {
		return nil, fmt.Errorf("topic %q is named more than once in the request: %w", rt.Topic, kerr.InvalidRequest)
	}
	partitions := rt.NumPartitions
	if len(rt.ReplicaAssignment) > 0 {
		if partitions != -1 || rt.ReplicationFactor != -1 {
			return nil, fmt.Errorf("give either a replica assignment or partition count and replication factor: %w", kerr.InvalidRequest)
		}
		node := s.cluster.NodeID()
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return nil, fmt.Errorf("replica assignment partitions must be 0..%d in order: %w", len(rt.ReplicaAssignment)-1, kerr.InvalidReplicaAssignment)
			}
			if len(a.Replicas) != 1 || a.Replicas[0] != node {
				return nil, fmt.Errorf("partition %d: replicas %v; this cluster has only broker %d: %w", a.Partition, a.Replicas, node, kerr.InvalidReplicaAssignment)
			}
		}
		partitions = int32(len(rt.ReplicaAssignment))
	}
	configs := make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value == nil {
			return nil, fmt.Errorf("config %q has a null value: %w", c.Name, kerr.InvalidConfig)
		}
		configs[c.Name] = *c.Value
	}
	return s.cluster.CreateTopic(ctx, replication.CreateTopicRequest{
		Name:              rt.Topic,
		Partitions:        partitions,
		ReplicationFactor: rt.ReplicationFactor,
		Configs:           configs,
		ValidateOnly:      validateOnly,
	})
}
