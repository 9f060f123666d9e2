package wire

// DescribeConfigs (key 32), versions 0-4.
//
// Describes TOPIC resources (every topic config, override or inherited) and
// the BROKER resource named by this node's id (or "" for the cluster-wide
// defaults). Each value's source is the first that sets it of
// DYNAMIC_TOPIC_CONFIG (a topic override), DYNAMIC_BROKER_CONFIG and
// DYNAMIC_DEFAULT_BROKER_CONFIG (set by AlterConfigs or
// IncrementalAlterConfigs on a BROKER resource), STATIC_BROKER_CONFIG (the
// config file, environment or flags) and DEFAULT_CONFIG; synonyms list
// them in that order (log.retention.ms before log.retention.minutes before
// log.retention.hours at each level). Broker configs that can only change
// with a restart are read-only. GROUP resources (type 32, KIP-848/932)
// describe a group's share configs: its own setting (GROUP_CONFIG) or the
// default (DEFAULT_CONFIG), for any group id. ConfigNames filters; null
// means all. Other resource types are INVALID_REQUEST.
//
// Version notes: v1 synonyms and config source (KIP-226); v2 is the same;
// v3 config type and documentation (KIP-569); v4 flexible.

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/configs"
)

func handleDescribeConfigs(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configs.Entry
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			entries, err = s.cluster.DescribeTopicConfigs(rr.ResourceName)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(s.cluster.NodeID())) {
				err = fmt.Errorf("broker %q is not this broker (%d): %w", rr.ResourceName, s.cluster.NodeID(), kerr.InvalidRequest)
				break
			}
			entries = s.cluster.DescribeBrokerConfigs()
		case kmsg.ConfigResourceTypeGroupConfig:
			entries, err = s.cluster.DescribeGroupConfigs(rr.ResourceName)
		default:
			err = fmt.Errorf("resource type %s is not supported: %w", rr.ResourceType, kerr.InvalidRequest)
		}
		if err != nil {
			sr.ErrorCode = s.errorCode(err)
			sr.ErrorMessage = errorMessage(err)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !contains(rr.ConfigNames, e.Name) {
				continue
			}
			sr.Configs = append(sr.Configs, describeConfig(e, req))
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return reply{resp: resp}
}

func describeConfig(e configs.Entry, req *kmsg.DescribeConfigsRequest) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	value := e.Value
	c.Name, c.Value, c.ReadOnly, c.IsSensitive = e.Name, &value, e.ReadOnly, e.Sensitive
	c.Source = e.Source
	c.IsDefault = e.Source == kmsg.ConfigSourceDefaultConfig
	if req.IncludeSynonyms {
		for _, syn := range e.Synonyms {
			sc := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			v := syn.Value
			sc.Name, sc.Value, sc.Source = syn.Name, &v, syn.Source
			c.ConfigSynonyms = append(c.ConfigSynonyms, sc)
		}
	}
	c.ConfigType = e.Type
	if req.IncludeDocumentation {
		doc := e.Documentation
		c.Documentation = &doc
	}
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
