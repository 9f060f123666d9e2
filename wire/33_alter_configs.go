package wire

// AlterConfigs (key 33), versions 0-2.
//
// Replaces the whole set of overrides of each resource: a TOPIC's config
// overrides, a BROKER's dynamic configs ("" for the cluster default, or
// this node's id), or a GROUP's configs (share group configs). Configs the request does not name return to their
// inherited values; entries with a null value are ignored, as in Kafka.
// Changes are persisted and take effect at once (topic configs on every
// partition, broker defaults on every topic without an override, schedule
// intervals on the next tick). ValidateOnly checks without changing.
//
// Errors per resource, with a message: INVALID_CONFIG for an unknown,
// read-only or malformed config (naming the config and the fix),
// UNKNOWN_TOPIC_OR_PARTITION for an unknown topic, INVALID_REQUEST for
// another broker, an empty group id, or a resource type other than TOPIC,
// BROKER and GROUP (BROKER_LOGGER, ...).
//
// Any node answers: on a node that is not the metadata leader, the
// resources answered NOT_CONTROLLER are forwarded to the leader
// (forward_admin.go) and its per-resource answers relayed; this node's
// DescribeConfigs follows within a metadata round trip.
//
// Version notes: v1 is v0 (throttle behaviour, KIP-219); v2 flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterConfigs(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		configs := make(map[string]string, len(rr.Configs))
		for _, c := range rr.Configs {
			if c.Value != nil {
				configs[c.Name] = *c.Value
			}
		}
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			err = s.cluster.AlterTopicConfigs(ctx, rr.ResourceName, configs, req.ValidateOnly)
		case kmsg.ConfigResourceTypeBroker:
			err = s.cluster.AlterBrokerConfigs(ctx, rr.ResourceName, configs, req.ValidateOnly)
		case kmsg.ConfigResourceTypeGroupConfig:
			err = s.cluster.AlterGroupConfigs(ctx, rr.ResourceName, configs, req.ValidateOnly)
		default:
			err = unsupportedConfigResource(rr.ResourceType)
		}
		sr.ErrorCode, sr.ErrorMessage = s.errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	s.forwardAlterConfigs(ctx, req, resp)
	return reply{resp: resp}
}
