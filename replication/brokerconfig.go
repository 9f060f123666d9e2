package replication

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
)

// brokerConfig describes one broker-level config.
type brokerConfig struct {
	name string
	typ  kmsg.ConfigType
	doc  string
	// kafkaDefault is Kafka's built-in default; a static value equal to it
	// is reported as DEFAULT_CONFIG.
	kafkaDefault string
	// synonyms are the lower-precedence names that set the same thing
	// (log.retention.minutes and log.retention.hours for log.retention.ms).
	synonyms []string
	// value formats the setting of a Config.
	value func(Config) string
	// validate parses a value; the error says what is wrong.
	validate func(string) error
	// apply sets a validated value on a Config; nil marks a read-only
	// (static) config.
	apply func(*Config, string)
	// list marks a list config (APPEND and SUBTRACT apply).
	list bool
}

// brokerConfigs lists the broker configs that can change at run time, in
// apply order: a lower-precedence synonym comes before the config that
// wins over it (log.retention.hours, then minutes, then ms).
var brokerConfigs = []brokerConfig{
	topicDefault("log.segment.bytes", "segment.bytes"),
	scaledTopicDefault("log.roll.hours", "segment.ms", time.Hour, "168", 1),
	topicDefault("log.roll.ms", "segment.ms", "log.roll.hours"),
	topicDefault("log.index.interval.bytes", "index.interval.bytes"),
	topicDefault("message.max.bytes", "max.message.bytes"),
	topicDefault("log.message.timestamp.type", "message.timestamp.type"),
	topicDefault("log.message.timestamp.difference.max.ms", "message.timestamp.difference.max.ms"),
	topicDefault("log.message.timestamp.before.max.ms", "message.timestamp.before.max.ms", "log.message.timestamp.difference.max.ms"),
	topicDefault("log.message.timestamp.after.max.ms", "message.timestamp.after.max.ms", "log.message.timestamp.difference.max.ms"),
	topicDefault("log.cleanup.policy", "cleanup.policy"),
	scaledTopicDefault("log.retention.hours", "retention.ms", time.Hour, "168", -1),
	scaledTopicDefault("log.retention.minutes", "retention.ms", time.Minute, "10080", -1, "log.retention.hours"),
	topicDefault("log.retention.ms", "retention.ms", "log.retention.minutes", "log.retention.hours"),
	topicDefault("log.retention.bytes", "retention.bytes"),
	topicDefault("log.cleaner.delete.retention.ms", "delete.retention.ms"),
	topicDefault("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
	topicDefault("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
	topicDefault("log.cleaner.min.cleanable.ratio", "min.cleanable.dirty.ratio"),
	{
		name: "log.retention.check.interval.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "300000",
		doc:      "Milliseconds between two retention checks of every partition.",
		value:    func(c Config) string { return formatMillis(c.Cleaner.RetentionCheckInterval) },
		validate: intRange(1, maxMillis),
		apply:    func(c *Config, v string) { c.Cleaner.RetentionCheckInterval = millis(v) },
	},
	{
		name: "log.cleaner.enable", typ: kmsg.ConfigTypeBoolean, kafkaDefault: "true",
		doc:      "Run the log cleaner, which compacts topics with cleanup.policy compact.",
		value:    func(c Config) string { return strconv.FormatBool(c.Cleaner.Enable) },
		validate: boolean,
		apply:    func(c *Config, v string) { c.Cleaner.Enable = strings.EqualFold(strings.TrimSpace(v), "true") },
	},
	{
		name: "log.cleaner.backoff.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "15000",
		doc:      "Milliseconds between two rounds of the log cleaner.",
		value:    func(c Config) string { return formatMillis(c.Cleaner.Backoff) },
		validate: intRange(1, maxMillis),
		apply:    func(c *Config, v string) { c.Cleaner.Backoff = millis(v) },
	},
	{
		name: "log.cleaner.dedupe.buffer.size", typ: kmsg.ConfigTypeLong, kafkaDefault: "134217728",
		doc:      "Bytes of memory the cleaner's key map may use; a log with more keys is compacted in several passes.",
		value:    func(c Config) string { return strconv.FormatInt(c.Cleaner.DedupeBufferSize, 10) },
		validate: intRange(1<<16, math.MaxInt64),
		apply:    func(c *Config, v string) { c.Cleaner.DedupeBufferSize = mustInt(v) },
	},
	{
		name: "log.cleaner.io.max.bytes.per.second", typ: kmsg.ConfigTypeDouble, kafkaDefault: "1.7976931348623157E308",
		doc: "Bytes per second the cleaner may read and write; Kafka's default (the largest double) or 0 is unthrottled.",
		value: func(c Config) string {
			if c.Cleaner.IOMaxBytesPerSecond <= 0 {
				return "1.7976931348623157E308"
			}
			return strconv.FormatInt(c.Cleaner.IOMaxBytesPerSecond, 10)
		},
		validate: floatRange(0, math.MaxFloat64),
		apply: func(c *Config, v string) {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			c.Cleaner.IOMaxBytesPerSecond = 0
			if f >= 1 && f < math.MaxInt64 {
				c.Cleaner.IOMaxBytesPerSecond = int64(f)
			}
		},
	},
}

// topicDefault is the broker config holding the default of a topic config.
func topicDefault(name, topic string, synonyms ...string) brokerConfig {
	tc, ok := findTopicConfig(topic)
	if !ok || tc.apply == nil {
		panic("replication: broker config " + name + " names no effective topic config " + topic)
	}
	return brokerConfig{
		name: name, typ: tc.typ, kafkaDefault: tc.kafkaDefault, synonyms: synonyms,
		doc:      "Default of the topic config " + topic + ": " + tc.doc,
		value:    func(c Config) string { return tc.value(c.Partition) },
		validate: tc.validate,
		apply:    func(c *Config, v string) { tc.apply(&c.Partition, v) },
		list:     tc.typ == kmsg.ConfigTypeList,
	}
}

// scaledTopicDefault is a broker config setting a millisecond topic default
// in a coarser unit (log.retention.hours); min is its smallest value (-1
// keeps forever).
func scaledTopicDefault(name, topic string, unit time.Duration, kafkaDefault string, min int64, synonyms ...string) brokerConfig {
	tc, _ := findTopicConfig(topic)
	perUnit := int64(unit / time.Millisecond)
	return brokerConfig{
		name: name, typ: kmsg.ConfigTypeLong, kafkaDefault: kafkaDefault, synonyms: synonyms,
		doc: "Default of the topic config " + topic + " in " + strings.TrimSuffix(name[strings.LastIndexByte(name, '.')+1:], "s") +
			"s, used when the millisecond setting is not given.",
		value: func(c Config) string {
			ms := mustInt(tc.value(c.Partition))
			if ms < 0 {
				return "-1"
			}
			return strconv.FormatInt(ms/perUnit, 10)
		},
		validate: intRange(min, maxMillis/perUnit),
		apply: func(c *Config, v string) {
			n := mustInt(v)
			if n >= 0 {
				n *= perUnit
			}
			tc.apply(&c.Partition, strconv.FormatInt(n, 10))
		},
	}
}

// findBrokerConfig returns the definition of a dynamic broker config.
func findBrokerConfig(name string) (brokerConfig, bool) {
	for _, bc := range brokerConfigs {
		if bc.name == name {
			return bc, true
		}
	}
	return brokerConfig{}, false
}

// brokerLayers is the static broker config with the dynamic broker
// configs over it: this node's, then the cluster default's. Within the
// merged dynamic configs Kafka's precedence holds (log.retention.ms over
// minutes over hours); any dynamic setting wins over the static one.
type brokerLayers struct {
	static Config
	// node and clusterDefault map Kafka names to values; nil is empty.
	node, clusterDefault map[string]string
}

// effective returns the Config in force.
func (b brokerLayers) effective() Config {
	cfg := b.static
	for _, bc := range brokerConfigs {
		if v, ok := b.node[bc.name]; ok {
			bc.apply(&cfg, v)
		} else if v, ok := b.clusterDefault[bc.name]; ok {
			bc.apply(&cfg, v)
		}
	}
	return cfg
}

// synonyms returns the dynamic settings of names, name by name in
// precedence order, this node's before the cluster default's.
func (b brokerLayers) synonyms(names []string) []ConfigSynonym {
	var out []ConfigSynonym
	for _, n := range names {
		if v, ok := b.node[n]; ok {
			out = append(out, ConfigSynonym{Name: n, Value: v, Source: kmsg.ConfigSourceDynamicBrokerConfig})
		}
		if v, ok := b.clusterDefault[n]; ok {
			out = append(out, ConfigSynonym{Name: n, Value: v, Source: kmsg.ConfigSourceDynamicDefaultBrokerConfig})
		}
	}
	return out
}

// describe reports one broker config.
func (b brokerLayers) describe(bc brokerConfig, effective Config) ConfigEntry {
	e := ConfigEntry{Name: bc.name, Type: bc.typ, Documentation: bc.doc, ReadOnly: bc.apply == nil}
	if bc.apply != nil {
		e.Synonyms = b.synonyms(append([]string{bc.name}, bc.synonyms...))
	}
	if static := bc.value(b.static); static != bc.kafkaDefault {
		e.Synonyms = append(e.Synonyms, ConfigSynonym{Name: bc.name, Value: static, Source: kmsg.ConfigSourceStaticBrokerConfig})
	}
	e.Synonyms = append(e.Synonyms, ConfigSynonym{Name: bc.name, Value: bc.kafkaDefault, Source: kmsg.ConfigSourceDefaultConfig})
	first := e.Synonyms[0]
	e.Value, e.Source = first.Value, first.Source
	if first.Name != bc.name {
		// Set through a synonym, perhaps in other units.
		e.Value = bc.value(effective)
	}
	return e
}

// staticBrokerConfigs are the read-only broker configs: set in the config
// file, environment or flags, changed by a restart.
var staticBrokerConfigs = []brokerConfig{
	{name: "node.id", typ: kmsg.ConfigTypeInt, kafkaDefault: "0", doc: "This broker's id.",
		value: func(c Config) string { return strconv.Itoa(int(c.NodeID)) }},
	{name: "broker.id", typ: kmsg.ConfigTypeInt, kafkaDefault: "0", doc: "Synonym of node.id.",
		value: func(c Config) string { return strconv.Itoa(int(c.NodeID)) }},
	{name: "log.dirs", typ: kmsg.ConfigTypeString, kafkaDefault: "./data", doc: "Directory holding the broker's data.",
		value: func(c Config) string { return c.DataDir }},
	{name: "advertised.listeners", typ: kmsg.ConfigTypeString, kafkaDefault: "PLAINTEXT://127.0.0.1:9092", doc: "Address clients are told to connect to.",
		value: func(c Config) string {
			return "PLAINTEXT://" + c.AdvertisedHost + ":" + strconv.Itoa(int(c.AdvertisedPort))
		}},
	{name: "num.partitions", typ: kmsg.ConfigTypeInt, kafkaDefault: "1", doc: "Partition count of auto-created topics.",
		value: func(c Config) string { return strconv.Itoa(int(c.DefaultPartitions)) }},
	{name: "auto.create.topics.enable", typ: kmsg.ConfigTypeBoolean, kafkaDefault: "true", doc: "Create unknown topics when they are first used.",
		value: func(c Config) string { return strconv.FormatBool(c.AutoCreateTopics) }},
	{name: "default.replication.factor", typ: kmsg.ConfigTypeInt, kafkaDefault: "1", doc: "Replication factor of auto-created topics.",
		value: func(Config) string { return "1" }},
}

// layersLocked returns the broker configs in force. c.mu must be held.
func (c *Cluster) layersLocked() brokerLayers {
	return brokerLayers{static: c.cfg, node: c.dynamicBrokers[c.nodeName()], clusterDefault: c.dynamicDefault}
}

// nodeName is this node's id as a BROKER resource name.
func (c *Cluster) nodeName() string { return strconv.Itoa(int(c.cfg.NodeID)) }

// DescribeBrokerConfigs returns the broker's configs, as DescribeConfigs
// reports them for the BROKER resource: the static ones (read-only) and
// the ones AlterBrokerConfigs changes, with their sources.
func (c *Cluster) DescribeBrokerConfigs() []ConfigEntry {
	c.mu.RLock()
	b := c.layersLocked()
	c.mu.RUnlock()
	effective := b.effective()
	var entries []ConfigEntry
	seen := map[string]bool{}
	for _, bc := range append(append([]brokerConfig(nil), staticBrokerConfigs...), brokerConfigs...) {
		entries = append(entries, b.describe(bc, effective))
		seen[bc.name] = true
	}
	// Topic configs Sluice accepts without effect, under their broker
	// names, read-only at Kafka's default.
	for _, tc := range topicConfigs {
		if name := tc.brokerNames[0]; !seen[name] {
			seen[name] = true
			entries = append(entries, ConfigEntry{
				Name: name, Value: tc.kafkaDefault, Source: kmsg.ConfigSourceDefaultConfig, ReadOnly: true, Type: tc.typ,
				Documentation: tc.documentation(),
				Synonyms:      []ConfigSynonym{{Name: name, Value: tc.kafkaDefault, Source: kmsg.ConfigSourceDefaultConfig}},
			})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries
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
func (c *Cluster) AlterBrokerConfigs(ctx context.Context, broker string, configs map[string]string, validateOnly bool) error {
	return c.changeBrokerConfigs(broker, validateOnly, func(map[string]string, func(string) string) (map[string]string, error) {
		return copyConfigs(configs), nil
	})
}

// IncrementalAlterBrokerConfigs applies ops to the dynamic configs of a
// BROKER resource, as IncrementalAlterConfigs does; see AlterBrokerConfigs
// and ConfigOp.
func (c *Cluster) IncrementalAlterBrokerConfigs(ctx context.Context, broker string, ops []ConfigOp, validateOnly bool) error {
	return c.changeBrokerConfigs(broker, validateOnly, func(old map[string]string, current func(string) string) (map[string]string, error) {
		return applyConfigOps(old, ops, current, func(name string) bool {
			bc, ok := findBrokerConfig(name)
			return ok && bc.list
		})
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
	effectiveOld := layers.effective()
	current := func(name string) string {
		if v, ok := old[name]; ok {
			return v
		}
		if bc, ok := findBrokerConfig(name); ok {
			if broker == "" {
				// The cluster default inherits only the static value.
				return bc.value(c.cfg)
			}
			return bc.value(effectiveOld)
		}
		return ""
	}
	next, err := change(copyConfigs(old), current)
	if err != nil {
		return err
	}
	if err := validateBrokerConfigs(next); err != nil {
		return err
	}
	if broker == "" {
		layers.clusterDefault = next
	} else {
		layers.node = next
	}
	effective := layers.effective()
	if err := effective.Validate(); err != nil {
		return fmt.Errorf("%s: %w", strings.TrimPrefix(err.Error(), "replication: "), kerr.InvalidConfig)
	}
	configs := make(map[string]partitionConfigChange, len(c.topics))
	for name, t := range c.topics {
		cfg, err := topicPartitionConfig(effective.Partition, t.overrides)
		if err != nil {
			return fmt.Errorf("with these broker configs, topic %s: %w", name, err)
		}
		configs[name] = partitionConfigChange{topic: t, config: cfg}
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
	for _, ch := range configs {
		if err := c.setTopicConfigLocked(ch.topic, ch.topic.overrides, ch.config); err != nil && first == nil {
			first = err
		}
	}
	c.logger.Info("broker configs changed", zap.String("broker", broker), zap.Any("configs", next))
	c.wakeSchedules()
	return first
}

// partitionConfigChange is a topic with the partition config it gets.
type partitionConfigChange struct {
	topic  *Topic
	config partition.Config
}

// setBrokerLayerLocked replaces one dynamic layer; an empty one is
// removed.
func (c *Cluster) setBrokerLayerLocked(broker string, configs map[string]string) {
	if len(configs) == 0 {
		configs = nil
	}
	if broker == "" {
		c.dynamicDefault = configs
		return
	}
	if configs == nil {
		delete(c.dynamicBrokers, broker)
		return
	}
	c.dynamicBrokers[broker] = configs
}

// validateBrokerConfigs checks dynamic broker configs by themselves.
func validateBrokerConfigs(configs map[string]string) error {
	names := make([]string, 0, len(configs))
	for name := range configs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		bc, ok := findBrokerConfig(name)
		if !ok {
			for _, s := range staticBrokerConfigs {
				if s.name == name {
					return fmt.Errorf("broker config %s is read-only: set it in the config file, environment or flags and restart: %w", name, kerr.InvalidConfig)
				}
			}
			return fmt.Errorf("broker config %s cannot be changed at run time (see DescribeConfigs for the ones that can): %w", name, kerr.InvalidConfig)
		}
		if err := bc.validate(configs[name]); err != nil {
			return fmt.Errorf("broker config %s=%q: %v: %w", name, configs[name], err, kerr.InvalidConfig)
		}
	}
	return nil
}

// loadBrokerConfigs keeps the valid dynamic configs of a persisted layer;
// a config this version does not know or accept is dropped with a warning
// rather than stopping the broker.
func (c *Cluster) loadBrokerConfigs(layer string, configs map[string]string) map[string]string {
	if len(configs) == 0 {
		return nil
	}
	kept := make(map[string]string, len(configs))
	for name, value := range configs {
		if err := validateBrokerConfigs(map[string]string{name: value}); err != nil {
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
