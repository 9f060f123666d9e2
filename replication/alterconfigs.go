package replication

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/configs"
	"github.com/sluice-io/sluice/replication/meta"
)

// AlterTopicConfigs replaces the whole override set of a topic with
// configs, as AlterConfigs does: configs not named return to their
// inherited values. The change is a metadata command; it returns once
// this node's replicas have the new config. Errors are
// kerr.UnknownTopicOrPartition and kerr.InvalidConfig with a message
// naming the config and the fix, and NotController on a node that is not
// the metadata leader. validateOnly checks without changing anything.
func (c *Cluster) AlterTopicConfigs(ctx context.Context, topic string, values map[string]string, validateOnly bool) error {
	return c.changeTopicConfigs(ctx, topic, validateOnly, func(map[string]string, func(string) string) (map[string]string, error) {
		return copyConfigs(values), nil
	})
}

// IncrementalAlterTopicConfigs applies ops to a topic's overrides, as
// IncrementalAlterConfigs does; see configs.Op and AlterTopicConfigs.
func (c *Cluster) IncrementalAlterTopicConfigs(ctx context.Context, topic string, ops []configs.Op, validateOnly bool) error {
	return c.changeTopicConfigs(ctx, topic, validateOnly, func(old map[string]string, current func(string) string) (map[string]string, error) {
		return configs.ApplyOps(old, ops, current, configs.IsTopicList)
	})
}

// changeTopicConfigs validates the overrides change computes from the
// old ones against the leader's state and proposes them; every node
// applies them to its replicas when the command is applied.
func (c *Cluster) changeTopicConfigs(ctx context.Context, name string, validateOnly bool, change func(old map[string]string, current func(string) string) (map[string]string, error)) error {
	if c.isClosed() {
		return ErrClosed
	}
	if err := c.controller(); err != nil {
		return err
	}
	s := c.group.State()
	t, ok := s.Topic(name)
	if !ok {
		return fmt.Errorf("topic %q does not exist: %w", name, kerr.UnknownTopicOrPartition)
	}
	layers := c.layersOf(s)
	current := func(config string) string {
		for _, e := range layers.DescribeTopic(nil) {
			if e.Name == config {
				return e.Value
			}
		}
		return ""
	}
	overrides, err := change(copyConfigs(t.Configs), current)
	if err != nil {
		return err
	}
	if _, err := configs.ResolveTopic(c.effectiveOf(s).Partition, overrides); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if _, err := c.propose(ctx, &meta.AlterTopicConfigs{Topic: name, Configs: overrides}); err != nil {
		return err
	}
	c.logger.Info("topic configs changed", zap.String("topic", name), zap.Any("configs", overrides))
	return nil
}
