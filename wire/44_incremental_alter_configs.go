package wire

// IncrementalAlterConfigs (key 44), versions 0-1.
//
// Changes single configs of each resource (KIP-339): SET replaces a value,
// DELETE removes the override so the inherited value applies, APPEND and
// SUBTRACT add items to or remove them from a list config (cleanup.policy,
// log.cleanup.policy), starting from the value in force. Resources are a
// TOPIC's overrides, a BROKER's dynamic configs ("" for the cluster
// default, or this node's id) or a GROUP's configs (share group configs,
// any group id, stored in the cluster metadata). Changes are persisted and take effect at
// once, as for AlterConfigs. ValidateOnly checks without changing.
//
// Errors per resource, with a message: INVALID_CONFIG for an unknown,
// read-only or malformed config, APPEND or SUBTRACT on a config that is
// not a list, or a SUBTRACT leaving a list empty; INVALID_REQUEST for a
// config named twice, an unknown operation, SET without a value, another
// broker, an empty group id, or a resource type other than TOPIC, BROKER
// and GROUP; and
// UNKNOWN_TOPIC_OR_PARTITION for an unknown topic.
//
// Any node answers: on a node that is not the metadata leader, the
// resources answered NOT_CONTROLLER are forwarded to the leader
// (forward_admin.go) and its per-resource answers relayed; this node's
// DescribeConfigs follows within a metadata round trip.
//
// Version notes: v1 flexible.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/configs"
)

func handleIncrementalAlterConfigs(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		ops := make([]configs.Op, 0, len(rr.Configs))
		for _, c := range rr.Configs {
			ops = append(ops, configs.Op{Name: c.Name, Op: c.Op, Value: c.Value})
		}
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			err = s.cluster.IncrementalAlterTopicConfigs(ctx, rr.ResourceName, ops, req.ValidateOnly)
		case kmsg.ConfigResourceTypeBroker:
			err = s.cluster.IncrementalAlterBrokerConfigs(ctx, rr.ResourceName, ops, req.ValidateOnly)
		case kmsg.ConfigResourceTypeGroupConfig:
			err = s.cluster.IncrementalAlterGroupConfigs(ctx, rr.ResourceName, ops, req.ValidateOnly)
		default:
			err = unsupportedConfigResource(rr.ResourceType)
		}
		sr.ErrorCode, sr.ErrorMessage = s.errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	s.forwardIncrementalAlterConfigs(ctx, req, resp)
	return reply{resp: resp}
}

// unsupportedConfigResource is the error for config resources other than
// TOPIC, BROKER and GROUP.
func unsupportedConfigResource(t kmsg.ConfigResourceType) error {
	return fmt.Errorf("resource type %s is not supported; Sluice has TOPIC, BROKER and GROUP configs only: %w", t, kerr.InvalidRequest)
}
