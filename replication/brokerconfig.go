package replication

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/configs"
)

// layersLocked returns the broker configs in force. c.mu must be held.
func (c *Cluster) layersLocked() configs.Layers {
	return configs.Layers{Static: c.cfg.broker(), Node: c.dynamicBrokers[c.nodeName()], ClusterDefault: c.dynamicDefault}
}

// nodeName is this node's id as a BROKER resource name.
func (c *Cluster) nodeName() string { return strconv.Itoa(int(c.cfg.NodeID)) }

// DescribeBrokerConfigs returns the broker's configs, as DescribeConfigs
// reports them for the BROKER resource: the static ones (read-only) and
// the ones AlterBrokerConfigs changes, with their sources.
func (c *Cluster) DescribeBrokerConfigs() []configs.Entry {
	c.mu.RLock()
	b := c.layersLocked()
	c.mu.RUnlock()
	return b.DescribeBroker()
}

// brokerLayer returns the dynamic config map a BROKER resource name
// addresses: "" the cluster default, this node's id this node.
func (c *Cluster) brokerLayerLocked(broker string) (map[string]string, error) {
	switch broker {
	case "":
		return c.dynamicDefault, nil
	case c.nodeName():
		return c.dynamicBrokers[broker], nil
	}
	return nil, fmt.Errorf("broker %q is not this broker; name %q (this node) or \"\" (the cluster default): %w", broker, c.nodeName(), kerr.InvalidRequest)
}

// AlterBrokerConfigs replaces the whole set of dynamic configs of a BROKER
// resource ("" for the cluster default, or this node's id), as
// AlterConfigs does. Values take effect at once: topic defaults for topics
// without overrides, and the retention and cleaner schedules. They are
// persisted and survive restarts. Errors are kerr.InvalidRequest (another
// broker) and kerr.InvalidConfig (unknown or read-only config, bad value),
// with messages.
func (c *Cluster) AlterBrokerConfigs(ctx context.Context, broker string, values map[string]string, validateOnly bool) error {
	return c.changeBrokerConfigs(broker, validateOnly, func(map[string]string, func(string) string) (map[string]string, error) {
		return copyConfigs(values), nil
	})
}

// IncrementalAlterBrokerConfigs applies ops to the dynamic configs of a
// BROKER resource, as IncrementalAlterConfigs does; see AlterBrokerConfigs
// and configs.Op.
func (c *Cluster) IncrementalAlterBrokerConfigs(ctx context.Context, broker string, ops []configs.Op, validateOnly bool) error {
	return c.changeBrokerConfigs(broker, validateOnly, func(old map[string]string, current func(string) string) (map[string]string, error) {
		return configs.ApplyOps(old, ops, current, configs.IsBrokerList)
	})
}

// changeBrokerConfigs validates, persists and applies a new dynamic config
// set of one BROKER resource, computed by change from the old one.
func (c *Cluster) changeBrokerConfigs(broker string, validateOnly bool, change func(old map[string]string, current func(string) string) (map[string]string, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	old, err := c.brokerLayerLocked(broker)
	if err != nil {
		return err
	}
	layers := c.layersLocked()
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
	changes := make(map[string]partitionConfigChange, len(c.topics))
	for name, t := range c.topics {
		cfg, err := configs.ResolveTopic(effective.Partition, t.overrides)
		if err != nil {
			return fmt.Errorf("with these broker configs, topic %s: %w", name, err)
		}
		changes[name] = partitionConfigChange{topic: t, config: cfg}
	}
	if validateOnly {
		return nil
	}

	oldDefault, oldNode := c.dynamicDefault, c.dynamicBrokers[c.nodeName()]
	c.setBrokerLayerLocked(broker, next)
	if err := c.saveLocked(nil); err != nil {
		c.dynamicDefault = oldDefault
		c.setBrokerLayerLocked(c.nodeName(), oldNode)
		return err
	}
	c.effective = effective
	var first error
	for _, ch := range changes {
		if err := c.setTopicConfigLocked(ch.topic, ch.topic.overrides, ch.config); err != nil && first == nil {
			first = err
		}
	}
	c.logger.Info("broker configs changed", zap.String("broker", broker), zap.Any("configs", next))
	c.cleaner.SetConfig(effective.Cleaner)
	return first
}

// partitionConfigChange is a topic with the partition config it gets.
type partitionConfigChange struct {
	topic  *Topic
	config partition.Config
}

// setBrokerLayerLocked replaces one dynamic layer; an empty one is
// removed.
func (c *Cluster) setBrokerLayerLocked(broker string, values map[string]string) {
	if len(values) == 0 {
		values = nil
	}
	if broker == "" {
		c.dynamicDefault = values
		return
	}
	if values == nil {
		delete(c.dynamicBrokers, broker)
		return
	}
	c.dynamicBrokers[broker] = values
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
