package replication

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/configs"
)

// AlterTopicConfigs replaces the whole override set of a topic with
// configs, as AlterConfigs does: configs not named return to their
// inherited values. The change is persisted and applied to every partition
// at once. Errors are kerr.UnknownTopicOrPartition and kerr.InvalidConfig
// with a message naming the config and the fix. validateOnly checks
// without changing anything.
func (c *Cluster) AlterTopicConfigs(ctx context.Context, topic string, values map[string]string, validateOnly bool) error {
	return c.changeTopicConfigs(topic, validateOnly, func(map[string]string, func(string) string) (map[string]string, error) {
		return copyConfigs(values), nil
	})
}

// IncrementalAlterTopicConfigs applies ops to a topic's overrides, as
// IncrementalAlterConfigs does; see configs.Op and AlterTopicConfigs.
func (c *Cluster) IncrementalAlterTopicConfigs(ctx context.Context, topic string, ops []configs.Op, validateOnly bool) error {
	return c.changeTopicConfigs(topic, validateOnly, func(old map[string]string, current func(string) string) (map[string]string, error) {
		return configs.ApplyOps(old, ops, current, configs.IsTopicList)
	})
}

// changeTopicConfigs validates, persists and applies the overrides change
// computes from the old ones.
func (c *Cluster) changeTopicConfigs(name string, validateOnly bool, change func(old map[string]string, current func(string) string) (map[string]string, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	t, ok := c.topics[name]
	if !ok {
		return fmt.Errorf("topic %q does not exist: %w", name, kerr.UnknownTopicOrPartition)
	}
	layers := c.layersLocked()
	current := func(config string) string {
		for _, e := range layers.DescribeTopic(nil) {
			if e.Name == config {
				return e.Value
			}
		}
		return ""
	}
	overrides, err := change(copyConfigs(t.overrides), current)
	if err != nil {
		return err
	}
	cfg, err := configs.ResolveTopic(c.effective.Partition, overrides)
	if err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	old := t
	changed := &Topic{name: t.name, id: t.id, internal: t.internal, overrides: overrides, config: cfg, partitions: t.partitions}
	c.topics[name], c.topicsByID[t.id] = changed, changed
	if err := c.saveLocked(nil); err != nil {
		c.topics[name], c.topicsByID[t.id] = old, old
		return err
	}
	err = c.setTopicConfigLocked(changed, overrides, cfg)
	c.logger.Info("topic configs changed", zap.String("topic", name), zap.Any("configs", overrides))
	return err
}

// setTopicConfigLocked makes cfg the topic's partition config: the Topic
// is replaced (readers holding the old one keep a consistent snapshot) and
// every live replica gets SetConfig. c.mu must be held exclusively.
// SetConfig does no I/O, so calling it under mu is allowed.
func (c *Cluster) setTopicConfigLocked(t *Topic, overrides map[string]string, cfg partition.Config) error {
	if cur := c.topics[t.name]; cur != nil {
		t = cur
	}
	changed := &Topic{name: t.name, id: t.id, internal: t.internal, overrides: overrides, config: cfg, partitions: t.partitions}
	c.topics[t.name], c.topicsByID[t.id] = changed, changed
	var first error
	for _, p := range t.partitions {
		if err := p.replica.SetConfig(cfg); err != nil && first == nil {
			first = fmt.Errorf("replication: apply config to %s-%d: %w", t.name, p.Index, err)
		}
	}
	return first
}
