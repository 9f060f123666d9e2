package configs

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/cleaner"
)

// Broker is what the broker configs read and set: the settings
// DescribeConfigs reports read-only for the BROKER resource, and the ones
// dynamic broker configs change (the defaults of topic configs and the
// retention and cleaner schedule).
type Broker struct {
	// NodeID corresponds to node.id (and broker.id).
	NodeID int32
	// DataDir corresponds to log.dirs.
	DataDir string
	// AdvertisedHost and AdvertisedPort correspond to
	// advertised.listeners.
	AdvertisedHost string
	AdvertisedPort int32
	// DefaultPartitions corresponds to num.partitions.
	DefaultPartitions int32
	// AutoCreateTopics corresponds to auto.create.topics.enable.
	AutoCreateTopics bool
	// Partition holds the broker-wide defaults of topic configs.
	Partition partition.Config
	// Cleaner is the retention and cleaner schedule.
	Cleaner cleaner.Config
	// MinFreeBytes corresponds to storage.min.free.bytes: below it appends
	// are refused (replication.Config.MinFreeBytes).
	MinFreeBytes int64
	// DeadLetterTopicPrefix corresponds to
	// errors.deadletterqueue.topic.name.prefix (KIP-1191, Kafka's default
	// "dlq."): a share group's dead-letter topic must start with it; ""
	// allows any name.
	DeadLetterTopicPrefix string
	// DeadLetterAutoCreate corresponds to
	// errors.deadletterqueue.auto.create.topics.enable (KIP-1191, default
	// false): a share group's missing dead-letter topic is created, with
	// num.partitions partitions and default.replication.factor replicas,
	// when its first dead letter is written.
	DeadLetterAutoCreate bool
}

// Validate reports a Broker whose dynamic part cannot work: a bad
// schedule, or topic defaults that contradict each other.
func (b Broker) Validate() error {
	if err := b.Cleaner.Validate(); err != nil {
		return err
	}
	return b.Partition.Validate()
}

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
	value func(Broker) string
	// validate parses a value; the error says what is wrong.
	validate func(string) error
	// apply sets a validated value on a Broker; nil marks a read-only
	// (static) config.
	apply func(*Broker, string)
	// list marks a list config (APPEND and SUBTRACT apply).
	list bool
}

// brokerConfigs lists the broker configs that can change at run time, in
// apply order: a lower-precedence synonym comes before the config that
// wins over it (log.retention.hours, then minutes, then ms).
var brokerConfigs = []brokerConfig{
	{
		name: "storage.min.free.bytes", typ: kmsg.ConfigTypeLong, kafkaDefault: "1073741824",
		doc: "Bytes the data dir's filesystem must keep free: below it produce and group commits are refused with " +
			"KAFKA_STORAGE_ERROR (retriable) until space returns; 0 disables the check. Not a Kafka config (Redpanda has storage_min_free_bytes).",
		value:    func(c Broker) string { return strconv.FormatInt(c.MinFreeBytes, 10) },
		validate: intRange(0, math.MaxInt64),
		apply:    func(c *Broker, v string) { c.MinFreeBytes = mustInt(v) },
	},
	{
		name: "errors.deadletterqueue.auto.create.topics.enable", typ: kmsg.ConfigTypeBoolean, kafkaDefault: "false",
		doc: "Create a share group's dead-letter topic (errors.deadletterqueue.topic.name) when a dead letter is first written " +
			"to it and it does not exist, with num.partitions partitions and default.replication.factor replicas (KIP-1191); " +
			"otherwise the records are archived without dead letters until the topic is created.",
		value:    func(c Broker) string { return strconv.FormatBool(c.DeadLetterAutoCreate) },
		validate: boolean,
		apply:    func(c *Broker, v string) { c.DeadLetterAutoCreate = strings.EqualFold(strings.TrimSpace(v), "true") },
	},
	{
		name: "errors.deadletterqueue.topic.name.prefix", typ: kmsg.ConfigTypeString, kafkaDefault: DefaultDeadLetterTopicPrefix,
		doc: "Prefix every share group's dead-letter topic name (errors.deadletterqueue.topic.name) must start with (KIP-1191), " +
			"so records a broker writes on a group's behalf cannot land in an arbitrary topic; empty allows any name.",
		value:    func(c Broker) string { return c.DeadLetterTopicPrefix },
		validate: deadLetterPrefix,
		apply:    func(c *Broker, v string) { c.DeadLetterTopicPrefix = strings.TrimSpace(v) },
	},
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
	topicDefault("min.insync.replicas", "min.insync.replicas"),
	{
		name: "log.retention.check.interval.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "300000",
		doc:      "Milliseconds between two retention checks of every partition.",
		value:    func(c Broker) string { return formatMillis(c.Cleaner.RetentionCheckInterval) },
		validate: intRange(1, maxMillis),
		apply:    func(c *Broker, v string) { c.Cleaner.RetentionCheckInterval = millis(v) },
	},
	{
		name: "log.cleaner.enable", typ: kmsg.ConfigTypeBoolean, kafkaDefault: "true",
		doc:      "Run the log cleaner, which compacts topics with cleanup.policy compact.",
		value:    func(c Broker) string { return strconv.FormatBool(c.Cleaner.Enable) },
		validate: boolean,
		apply:    func(c *Broker, v string) { c.Cleaner.Enable = strings.EqualFold(strings.TrimSpace(v), "true") },
	},
	{
		name: "log.cleaner.backoff.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "15000",
		doc:      "Milliseconds between two rounds of the log cleaner.",
		value:    func(c Broker) string { return formatMillis(c.Cleaner.Backoff) },
		validate: intRange(1, maxMillis),
		apply:    func(c *Broker, v string) { c.Cleaner.Backoff = millis(v) },
	},
	{
		name: "log.cleaner.dedupe.buffer.size", typ: kmsg.ConfigTypeLong, kafkaDefault: "134217728",
		doc:      "Bytes of memory the cleaner's key map may use; a log with more keys is compacted in several passes.",
		value:    func(c Broker) string { return strconv.FormatInt(c.Cleaner.DedupeBufferSize, 10) },
		validate: intRange(1<<16, math.MaxInt64),
		apply:    func(c *Broker, v string) { c.Cleaner.DedupeBufferSize = mustInt(v) },
	},
	{
		name: "log.cleaner.io.max.bytes.per.second", typ: kmsg.ConfigTypeDouble, kafkaDefault: "1.7976931348623157E308",
		doc: "Bytes per second the cleaner may read and write; Kafka's default (the largest double) or 0 is unthrottled.",
		value: func(c Broker) string {
			if c.Cleaner.IOMaxBytesPerSecond <= 0 {
				return "1.7976931348623157E308"
			}
			return strconv.FormatInt(c.Cleaner.IOMaxBytesPerSecond, 10)
		},
		validate: floatRange(0, math.MaxFloat64),
		apply: func(c *Broker, v string) {
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
		panic("configs: broker config " + name + " names no effective topic config " + topic)
	}
	return brokerConfig{
		name: name, typ: tc.typ, kafkaDefault: tc.kafkaDefault, synonyms: synonyms,
		doc:      "Default of the topic config " + topic + ": " + tc.doc,
		value:    func(c Broker) string { return tc.value(c.Partition) },
		validate: tc.validate,
		apply:    func(c *Broker, v string) { tc.apply(&c.Partition, v) },
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
		value: func(c Broker) string {
			ms := mustInt(tc.value(c.Partition))
			if ms < 0 {
				return "-1"
			}
			return strconv.FormatInt(ms/perUnit, 10)
		},
		validate: intRange(min, maxMillis/perUnit),
		apply: func(c *Broker, v string) {
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

// Layers is the static broker config with the dynamic broker configs over
// it: this node's, then the cluster default's. Within the merged dynamic
// configs Kafka's precedence holds (log.retention.ms over minutes over
// hours); any dynamic setting wins over the static one.
type Layers struct {
	// Static is the broker as configured at start (file, environment,
	// flags).
	Static Broker
	// Node and ClusterDefault map Kafka names to values; nil is empty.
	Node, ClusterDefault map[string]string
}

// Effective returns the Broker in force.
func (b Layers) Effective() Broker {
	cfg := b.Static
	for _, bc := range brokerConfigs {
		if v, ok := b.Node[bc.name]; ok {
			bc.apply(&cfg, v)
		} else if v, ok := b.ClusterDefault[bc.name]; ok {
			bc.apply(&cfg, v)
		}
	}
	return cfg
}

// synonyms returns the dynamic settings of names, name by name in
// precedence order, this node's before the cluster default's.
func (b Layers) synonyms(names []string) []Synonym {
	var out []Synonym
	for _, n := range names {
		if v, ok := b.Node[n]; ok {
			out = append(out, Synonym{Name: n, Value: v, Source: kmsg.ConfigSourceDynamicBrokerConfig})
		}
		if v, ok := b.ClusterDefault[n]; ok {
			out = append(out, Synonym{Name: n, Value: v, Source: kmsg.ConfigSourceDynamicDefaultBrokerConfig})
		}
	}
	return out
}

// describe reports one broker config.
func (b Layers) describe(bc brokerConfig, effective Broker) Entry {
	e := Entry{Name: bc.name, Type: bc.typ, Documentation: bc.doc, ReadOnly: bc.apply == nil}
	if bc.apply != nil {
		e.Synonyms = b.synonyms(append([]string{bc.name}, bc.synonyms...))
	}
	if static := bc.value(b.Static); static != bc.kafkaDefault {
		e.Synonyms = append(e.Synonyms, Synonym{Name: bc.name, Value: static, Source: kmsg.ConfigSourceStaticBrokerConfig})
	}
	e.Synonyms = append(e.Synonyms, Synonym{Name: bc.name, Value: bc.kafkaDefault, Source: kmsg.ConfigSourceDefaultConfig})
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
		value: func(c Broker) string { return strconv.Itoa(int(c.NodeID)) }},
	{name: "broker.id", typ: kmsg.ConfigTypeInt, kafkaDefault: "0", doc: "Synonym of node.id.",
		value: func(c Broker) string { return strconv.Itoa(int(c.NodeID)) }},
	{name: "log.dirs", typ: kmsg.ConfigTypeString, kafkaDefault: "./data", doc: "Directory holding the broker's data.",
		value: func(c Broker) string { return c.DataDir }},
	{name: "advertised.listeners", typ: kmsg.ConfigTypeString, kafkaDefault: "PLAINTEXT://127.0.0.1:9092", doc: "Address clients are told to connect to.",
		value: func(c Broker) string {
			return "PLAINTEXT://" + c.AdvertisedHost + ":" + strconv.Itoa(int(c.AdvertisedPort))
		}},
	{name: "num.partitions", typ: kmsg.ConfigTypeInt, kafkaDefault: "1", doc: "Partition count of auto-created topics.",
		value: func(c Broker) string { return strconv.Itoa(int(c.DefaultPartitions)) }},
	{name: "auto.create.topics.enable", typ: kmsg.ConfigTypeBoolean, kafkaDefault: "true", doc: "Create unknown topics when they are first used.",
		value: func(c Broker) string { return strconv.FormatBool(c.AutoCreateTopics) }},
	{name: "default.replication.factor", typ: kmsg.ConfigTypeInt, kafkaDefault: "1", doc: "Replication factor of auto-created topics.",
		value: func(Broker) string { return "1" }},
}

// DescribeBroker returns the broker's configs, as DescribeConfigs reports
// them for the BROKER resource: the static ones (read-only) and the
// dynamic ones, with their sources, sorted by name.
func (b Layers) DescribeBroker() []Entry {
	effective := b.Effective()
	var entries []Entry
	seen := map[string]bool{}
	for _, bc := range append(append([]brokerConfig(nil), staticBrokerConfigs...), brokerConfigs...) {
		entries = append(entries, b.describe(bc, effective))
		seen[bc.name] = true
	}
	// Topic configs Sluice accepts without effect, under their broker
	// names, read-only at Kafka's default.
	for _, tc := range topicConfigs {
		if len(tc.brokerNames) == 0 {
			continue // a topic config without a broker default
		}
		if name := tc.brokerNames[0]; !seen[name] {
			seen[name] = true
			entries = append(entries, Entry{
				Name: name, Value: tc.kafkaDefault, Source: kmsg.ConfigSourceDefaultConfig, ReadOnly: true, Type: tc.typ,
				Documentation: tc.documentation(),
				Synonyms:      []Synonym{{Name: name, Value: tc.kafkaDefault, Source: kmsg.ConfigSourceDefaultConfig}},
			})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries
}

// ValidateBroker checks dynamic broker configs by themselves; the error is
// an INVALID_CONFIG naming the config and the fix (read-only ones are set
// in the config file, environment or flags).
func ValidateBroker(configs map[string]string) error {
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

// BrokerValue returns the value of a dynamic broker config in cfg, and
// false for a name that is not one.
func BrokerValue(name string, cfg Broker) (string, bool) {
	bc, ok := findBrokerConfig(name)
	if !ok {
		return "", false
	}
	return bc.value(cfg), true
}

// IsBrokerList reports a dynamic broker config whose value is a list
// (APPEND and SUBTRACT apply to it).
func IsBrokerList(name string) bool {
	bc, ok := findBrokerConfig(name)
	return ok && bc.list
}
