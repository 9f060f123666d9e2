package replication

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/configs"
	"github.com/sluice-io/sluice/replication/meta"
)

// ShareGroupConfig returns the configuration in force for share group
// group: its GROUP resource configs (stored in the cluster metadata, so
// every node sees the same) over the broker's defaults
// (Config.ShareGroupDefaults). It reads this node's view
// of the metadata (a change made on the metadata leader arrives within a
// metadata round trip); it takes no lock (the cluster's is held while
// replicas open), so it is cheap enough to call per request. Safe for
// concurrent use.
func (c *Cluster) ShareGroupConfig(group string) configs.ShareGroup {
	var overrides map[string]string
	if all := c.groupConfigs.Load(); all != nil {
		overrides = (*all)[group]
	}
	return configs.ResolveShareGroup(c.cfg.shareGroupDefaults(), overrides)
}

// DescribeGroupConfigs returns every GROUP config of group, its own
// settings (source GROUP_CONFIG) or the defaults, as DescribeConfigs
// reports them; any group id may be described, existing or not.
// kerr.InvalidRequest for an empty id.
func (c *Cluster) DescribeGroupConfigs(group string) ([]configs.Entry, error) {
	if group == "" {
		return nil, fmt.Errorf("a GROUP resource needs a group id: %w", kerr.InvalidRequest)
	}
	c.mu.RLock()
	overrides := c.applied.GroupConfigsOf(group)
	c.mu.RUnlock()
	return configs.DescribeGroup(c.cfg.shareGroupDefaults(), overrides), nil
}

// AlterGroupConfigs replaces the whole config set of group, as
// AlterConfigs does: configs not named return to their defaults. Errors:
// kerr.InvalidConfig naming the config and the fix, kerr.InvalidRequest
// for an empty id, NotController on a node that is not the metadata
// leader. validateOnly checks without changing anything.
func (c *Cluster) AlterGroupConfigs(ctx context.Context, group string, values map[string]string, validateOnly bool) error {
	return c.changeGroupConfigs(ctx, group, validateOnly, func(map[string]string, func(string) string) (map[string]string, error) {
		return copyConfigs(values), nil
	})
}

// IncrementalAlterGroupConfigs applies ops to group's configs, as
// IncrementalAlterConfigs does (SET and DELETE; no group config is a
// list); see AlterGroupConfigs.
func (c *Cluster) IncrementalAlterGroupConfigs(ctx context.Context, group string, ops []configs.Op, validateOnly bool) error {
	return c.changeGroupConfigs(ctx, group, validateOnly, func(old map[string]string, current func(string) string) (map[string]string, error) {
		return configs.ApplyOps(old, ops, current, configs.IsGroupList)
	})
}

// changeGroupConfigs validates the configs change computes from the old
// ones against the leader's state and proposes them.
func (c *Cluster) changeGroupConfigs(ctx context.Context, group string, validateOnly bool, change func(old map[string]string, current func(string) string) (map[string]string, error)) error {
	if c.isClosed() {
		return ErrClosed
	}
	if group == "" {
		return fmt.Errorf("a GROUP resource needs a group id: %w", kerr.InvalidRequest)
	}
	if err := c.controller(); err != nil {
		return err
	}
	s := c.group.State()
	old := s.GroupConfigsOf(group)
	current := func(config string) string {
		for _, e := range configs.DescribeGroup(c.cfg.shareGroupDefaults(), old) {
			if e.Name == config {
				return e.Value
			}
		}
		return ""
	}
	values, err := change(copyConfigs(old), current)
	if err != nil {
		return err
	}
	if err := configs.ValidateGroup(values); err != nil {
		return err
	}
	// The prefix rule applies to a name being set: a group whose topic
	// was named before the prefix changed keeps it until it is changed.
	const deadLetterTopic = "errors.deadletterqueue.topic.name"
	if name := values[deadLetterTopic]; name != old[deadLetterTopic] {
		if err := configs.ValidateDeadLetterTopic(name, c.effectiveOf(s).DeadLetterTopicPrefix); err != nil {
			return err
		}
	}
	if validateOnly {
		return nil
	}
	if _, err := c.propose(ctx, &meta.AlterGroupConfigs{Group: group, Configs: values}); err != nil {
		return err
	}
	c.logger.Info("group configs changed", zap.String("group", group), zap.Any("configs", values))
	return nil
}

// shareGroupDefaults returns ShareGroupDefaults with unset fields at
// Kafka's defaults (configs.DefaultShareGroup).
func (c Config) shareGroupDefaults() configs.ShareGroup {
	d, k := c.ShareGroupDefaults, configs.DefaultShareGroup()
	if d.RecordLockDuration == 0 {
		d.RecordLockDuration = k.RecordLockDuration
	}
	if d.DeliveryCountLimit == 0 {
		d.DeliveryCountLimit = k.DeliveryCountLimit
	}
	if d.AutoOffsetReset == "" {
		d.AutoOffsetReset, d.ResetDuration = k.AutoOffsetReset, k.ResetDuration
	}
	return d
}

// DeadLetterTopicRules returns the broker configs governing share groups'
// dead-letter topics in force on this node (KIP-1191): the name prefix
// they must carry (errors.deadletterqueue.topic.name.prefix, "" for no
// rule) and whether a missing one is created on its first dead letter
// (errors.deadletterqueue.auto.create.topics.enable). Safe for concurrent
// use.
func (c *Cluster) DeadLetterTopicRules() (prefix string, autoCreate bool) {
	c.mu.RLock()
	effective := c.effectiveOf(c.applied)
	c.mu.RUnlock()
	return effective.DeadLetterTopicPrefix, effective.DeadLetterAutoCreate
}
