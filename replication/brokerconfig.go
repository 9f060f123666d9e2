package replication

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/configs"
	"github.com/sluice-io/sluice/replication/meta"
)

// nodeName is this node's id as a BROKER resource name.
func (c *Cluster) nodeName() string { return strconv.Itoa(int(c.cfg.NodeID)) }

// DescribeBrokerConfigs returns the broker's configs, as DescribeConfigs
// reports them for the BROKER resource: the static ones (read-only) and
// the ones AlterBrokerConfigs changes, with their sources.
func (c *Cluster) DescribeBrokerConfigs() []configs.Entry {
	c.mu.RLock()
	b := c.layersOf(c.applied)
	c.mu.RUnlock()
	return b.DescribeBroker()
}

// brokerLayer returns the node id of the dynamic config layer a BROKER
// resource name addresses ("" the cluster default, meta.DefaultBrokerNode;
// a node's id that node) and its configs in s.
func (c *Cluster) brokerLayer(s *meta.State, broker string) (int32, map[string]string, error) {
	if broker == "" {
		return meta.DefaultBrokerNode, s.Brokers.Default, nil
	}
	id, err := strconv.ParseInt(broker, 10, 32)
	if _, ok := s.Node(int32(id)); err != nil || !ok {
		return 0, nil, fmt.Errorf("broker %q is not a registered node; name one of them (this node is %q) or \"\" (the cluster default): %w", broker, c.nodeName(), kerr.InvalidRequest)
	}
	return int32(id), s.BrokerConfigsOf(int32(id)), nil
}

// AlterBrokerConfigs replaces the whole set of dynamic configs of a BROKER
// resource ("" for the cluster default, or a registered node's id), as
// AlterConfigs does. The change is a metadata command; on return this
// node applies it: topic defaults for topics without overrides, and the
// retention and cleaner schedules. Errors are kerr.InvalidRequest (not a
// registered node), kerr.InvalidConfig (unknown or read-only config, bad
// value), with messages, and NotController on a node that is not the
// metadata leader.
func (c *Cluster) AlterBrokerConfigs(ctx context.Context, broker string, values map[string]string, validateOnly bool) error {
	return c.changeBrokerConfigs(ctx, broker, validateOnly, func(map[string]string, func(string) string) (map[string]string, error) {
		return copyConfigs(values), nil
	})
}

// IncrementalAlterBrokerConfigs applies ops to the dynamic configs of a
// BROKER resource, as IncrementalAlterConfigs does; see AlterBrokerConfigs
// and configs.Op.
func (c *Cluster) IncrementalAlterBrokerConfigs(ctx context.Context, broker string, ops []configs.Op, validateOnly bool) error {
	return c.changeBrokerConfigs(ctx, broker, validateOnly, func(old map[string]string, current func(string) string) (map[string]string, error) {
		return configs.ApplyOps(old, ops, current, configs.IsBrokerList)
	})
}

// changeBrokerConfigs validates a new dynamic config set of one BROKER
// resource, computed by change from the old one, against the leader's
// state and proposes it. Each node applies it (topic defaults of its
// replicas, its cleaner's schedule) when the command is applied. A set
// for another node is validated with this node's static configs.
func (c *Cluster) changeBrokerConfigs(ctx context.Context, broker string, validateOnly bool, change func(old map[string]string, current func(string) string) (map[string]string, error)) error {
	if c.isClosed() {
		return ErrClosed
	}
	if err := c.controller(); err != nil {
		return err
	}
	s := c.group.State()
	node, old, err := c.brokerLayer(s, broker)
	if err != nil {
		return err
	}
	layers := c.layersOf(s)
	if node != meta.DefaultBrokerNode {
		layers.Node = old
	}
	effectiveOld := layers.Effective()
	current := func(name string) string {
		if v, ok := old[name]; ok {
			return v
		}
		inherited := effectiveOld
		if broker == "" {
			// The cluster default inherits only the static value.
			inherited = layers.Static
		}
		v, _ := configs.BrokerValue(name, inherited)
		return v
	}
	next, err := change(copyConfigs(old), current)
	if err != nil {
		return err
	}
	if err := configs.ValidateBroker(next); err != nil {
		return err
	}
	if broker == "" {
		layers.ClusterDefault = next
	} else {
		layers.Node = next
	}
	effective := layers.Effective()
	if err := effective.Validate(); err != nil {
		return fmt.Errorf("%s: %w", trimPackage(err.Error()), kerr.InvalidConfig)
	}
	for _, name := range s.TopicNames() {
		t, _ := s.Topic(name)
		if _, err := configs.ResolveTopic(effective.Partition, t.Configs); err != nil {
			return fmt.Errorf("with these broker configs, topic %s: %w", name, err)
		}
	}
	if validateOnly {
		return nil
	}
	if _, err := c.propose(ctx, &meta.AlterBrokerConfigs{NodeID: node, Configs: next}); err != nil {
		return err
	}
	c.logger.Info("broker configs changed", zap.String("broker", broker), zap.Any("configs", next))
	return nil
}

// loadBrokerConfigs keeps the valid dynamic configs of a persisted layer;
// a config this version does not know or accept is dropped with a warning
// rather than stopping the broker.
func (c *Cluster) loadBrokerConfigs(layer string, values map[string]string) map[string]string {
	if len(values) == 0 {
		return nil
	}
	kept := make(map[string]string, len(values))
	for name, value := range values {
		if err := configs.ValidateBroker(map[string]string{name: value}); err != nil {
			c.logger.Warn("ignoring stored dynamic broker config", zap.String("broker", layer), zap.Error(err))
			continue
		}
		kept[name] = value
	}
	return kept
}

func copyConfigs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// trimPackage drops the "package: " prefix of a config validation error, to
// give a client the message alone.
func trimPackage(msg string) string {
	for _, prefix := range []string{"replication: ", "cleaner: ", "partition: "} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			return rest
		}
	}
	return msg
}
