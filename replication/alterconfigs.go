package replication

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
)

// ConfigOp is one operation of IncrementalAlterConfigs on a config.
type ConfigOp struct {
	Name string
	// Op is SET (Value replaces the setting), DELETE (the setting is
	// removed and the inherited value applies), APPEND or SUBTRACT (Value,
	// a comma-separated list, is added to or removed from the current
	// list; only for list configs such as cleanup.policy).
	Op    kmsg.IncrementalAlterConfigOp
	Value *string
}

// applyConfigOps returns configs with ops applied. current gives a
// config's value in force, inherited when not set in configs: APPEND and
// SUBTRACT start from it. isList tells list configs. Errors are
// kerr.InvalidRequest (duplicate names, unknown op, SET without a value)
// and kerr.InvalidConfig (APPEND or SUBTRACT on a config that is not a
// list).
func applyConfigOps(configs map[string]string, ops []ConfigOp, current func(string) string, isList func(string) bool) (map[string]string, error) {
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if seen[op.Name] {
			return nil, fmt.Errorf("config %s appears twice; give each config once per resource: %w", op.Name, kerr.InvalidRequest)
		}
		seen[op.Name] = true
	}
	for _, op := range ops {
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, fmt.Errorf("SET of %s has no value; use DELETE to remove the setting: %w", op.Name, kerr.InvalidRequest)
			}
			configs[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(configs, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !isList(op.Name) {
				return nil, fmt.Errorf("config %s is not a list; APPEND and SUBTRACT apply only to list configs such as cleanup.policy, use SET: %w", op.Name, kerr.InvalidConfig)
			}
			if op.Value == nil {
				return nil, fmt.Errorf("%s of %s has no value: %w", op.Op, op.Name, kerr.InvalidRequest)
			}
			list := splitList(current(op.Name))
			if v, ok := configs[op.Name]; ok {
				list = splitList(v)
			}
			if op.Op == kmsg.IncrementalAlterConfigOpAppend {
				for _, item := range splitList(*op.Value) {
					if !containsString(list, item) {
						list = append(list, item)
					}
				}
			} else {
				var kept []string
				remove := splitList(*op.Value)
				for _, item := range list {
					if !containsString(remove, item) {
						kept = append(kept, item)
					}
				}
				list = kept
				if len(list) == 0 {
					return nil, fmt.Errorf("SUBTRACT %q would leave %s empty; SET it to another value instead: %w", *op.Value, op.Name, kerr.InvalidConfig)
				}
			}
			configs[op.Name] = strings.Join(list, ",")
		default:
			return nil, fmt.Errorf("unknown operation %d on %s; use SET, DELETE, APPEND or SUBTRACT: %w", op.Op, op.Name, kerr.InvalidRequest)
		}
	}
	return configs, nil
}

func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// AlterTopicConfigs replaces the whole override set of a topic with
// configs, as AlterConfigs does: configs not named return to their
// inherited values. The change is persisted and applied to every partition
// at once. Errors are kerr.UnknownTopicOrPartition and kerr.InvalidConfig
// with a message naming the config and the fix. validateOnly checks
// without changing anything.
func (c *Cluster) AlterTopicConfigs(ctx context.Context, topic string, configs map[string]string, validateOnly bool) error {
	return c.changeTopicConfigs(topic, validateOnly, func(map[string]string, func(string) string) (map[string]string, error) {
		return copyConfigs(configs), nil
	})
}

// IncrementalAlterTopicConfigs applies ops to a topic's overrides, as
// IncrementalAlterConfigs does; see ConfigOp and AlterTopicConfigs.
func (c *Cluster) IncrementalAlterTopicConfigs(ctx context.Context, topic string, ops []ConfigOp, validateOnly bool) error {
	return c.changeTopicConfigs(topic, validateOnly, func(old map[string]string, current func(string) string) (map[string]string, error) {
		return applyConfigOps(old, ops, current, func(name string) bool {
			tc, ok := findTopicConfig(name)
			return ok && tc.typ == kmsg.ConfigTypeList
		})
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
		for _, e := range describeTopicConfigs(layers, nil) {
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
	cfg, err := topicPartitionConfig(c.effective.Partition, overrides)
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
