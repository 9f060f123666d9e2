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
)

// topicConfig describes one topic-level config Sluice understands.
type topicConfig struct {
	name string
	// brokerNames are the broker-level defaults' names, most preferred
	// first: log.retention.ms before log.retention.minutes before
	// log.retention.hours, as Kafka resolves them; none for a config
	// without a broker default (errors.deadletterqueue.group.enable),
	// which has no effect on the partition config either.
	brokerNames []string
	typ         kmsg.ConfigType
	doc         string
	// kafkaDefault is Kafka's built-in default; a static broker value equal
	// to it is reported as DEFAULT_CONFIG, anything else as
	// STATIC_BROKER_CONFIG.
	kafkaDefault string
	// value formats the setting of a partition config; nil for configs
	// with no effect, whose value is always kafkaDefault.
	value func(partition.Config) string
	// validate parses a value; the error says what is wrong and how to fix
	// it.
	validate func(string) error
	// apply sets a validated value on a partition config; nil for configs
	// accepted without effect (noEffect says why).
	apply func(*partition.Config, string)
	// noEffect is set on configs Sluice accepts for compatibility but has
	// no use for; it is appended to the documentation.
	noEffect string
}

// topicConfigs is every topic config Sluice accepts. The order matters:
// partitionConfig applies overrides in this order, so a deprecated synonym
// (message.timestamp.difference.max.ms) comes before the configs that
// replace it.
var topicConfigs = []topicConfig{
	{
		name: "segment.bytes", brokerNames: []string{"log.segment.bytes"}, typ: kmsg.ConfigTypeInt,
		doc:          "Size in bytes at which a partition's active segment file is rolled.",
		kafkaDefault: "1073741824",
		value:        func(c partition.Config) string { return strconv.FormatInt(c.Log.SegmentBytes, 10) },
		validate:     intRange(14, math.MaxInt32),
		apply:        func(c *partition.Config, v string) { c.Log.SegmentBytes = mustInt(v) },
	},
	{
		name: "segment.ms", brokerNames: []string{"log.roll.ms", "log.roll.hours"}, typ: kmsg.ConfigTypeLong,
		doc:          "Age in milliseconds after which the active segment is rolled even if not full.",
		kafkaDefault: "604800000",
		value:        func(c partition.Config) string { return formatMillis(c.Log.SegmentAge) },
		validate:     intRange(1, maxMillis),
		apply:        func(c *partition.Config, v string) { c.Log.SegmentAge = millis(v) },
	},
	{
		name: "index.interval.bytes", brokerNames: []string{"log.index.interval.bytes"}, typ: kmsg.ConfigTypeInt,
		doc:          "Bytes of log between two entries of the sparse offset and time indexes.",
		kafkaDefault: "4096",
		value:        func(c partition.Config) string { return strconv.Itoa(c.Log.IndexIntervalBytes) },
		validate:     intRange(0, math.MaxInt32),
		apply:        func(c *partition.Config, v string) { c.Log.IndexIntervalBytes = int(mustInt(v)) },
	},
	{
		name: "max.message.bytes", brokerNames: []string{"message.max.bytes"}, typ: kmsg.ConfigTypeInt,
		doc:          "Largest record batch, in bytes, the partition accepts.",
		kafkaDefault: "1048588",
		value:        func(c partition.Config) string { return strconv.Itoa(c.MaxMessageBytes) },
		validate:     intRange(0, math.MaxInt32),
		apply:        func(c *partition.Config, v string) { c.MaxMessageBytes = int(mustInt(v)) },
	},
	{
		name: "message.timestamp.type", brokerNames: []string{"log.message.timestamp.type"}, typ: kmsg.ConfigTypeString,
		doc:          "CreateTime keeps producer timestamps; LogAppendTime stamps batches with the broker's clock.",
		kafkaDefault: "CreateTime",
		value:        func(c partition.Config) string { return c.TimestampType.String() },
		validate:     oneOf("CreateTime", "LogAppendTime"),
		apply: func(c *partition.Config, v string) {
			c.TimestampType = partition.CreateTime
			if v == "LogAppendTime" {
				c.TimestampType = partition.LogAppendTime
			}
		},
	},
	{
		name: "message.timestamp.difference.max.ms", brokerNames: []string{"log.message.timestamp.difference.max.ms"}, typ: kmsg.ConfigTypeLong,
		doc: "Deprecated (KIP-937): sets both message.timestamp.before.max.ms and message.timestamp.after.max.ms, " +
			"unless they are set themselves.",
		kafkaDefault: "9223372036854775807",
		value:        func(c partition.Config) string { return formatMillis(c.TimestampBeforeMax) },
		validate:     intRange(0, math.MaxInt64),
		apply: func(c *partition.Config, v string) {
			c.TimestampBeforeMax, c.TimestampAfterMax = millis(v), millis(v)
		},
	},
	{
		name: "message.timestamp.before.max.ms", brokerNames: []string{"log.message.timestamp.before.max.ms"}, typ: kmsg.ConfigTypeLong,
		doc: "How far in milliseconds a CreateTime record's timestamp may lie before the broker's clock; " +
			"older records are INVALID_TIMESTAMP.",
		kafkaDefault: "9223372036854775807",
		value:        func(c partition.Config) string { return formatMillis(c.TimestampBeforeMax) },
		validate:     intRange(0, math.MaxInt64),
		apply:        func(c *partition.Config, v string) { c.TimestampBeforeMax = millis(v) },
	},
	{
		name: "message.timestamp.after.max.ms", brokerNames: []string{"log.message.timestamp.after.max.ms"}, typ: kmsg.ConfigTypeLong,
		doc: "How far in milliseconds a CreateTime record's timestamp may lie after the broker's clock; " +
			"later records are INVALID_TIMESTAMP.",
		kafkaDefault: "9223372036854775807",
		value:        func(c partition.Config) string { return formatMillis(c.TimestampAfterMax) },
		validate:     intRange(0, math.MaxInt64),
		apply:        func(c *partition.Config, v string) { c.TimestampAfterMax = millis(v) },
	},
	{
		name: "cleanup.policy", brokerNames: []string{"log.cleanup.policy"}, typ: kmsg.ConfigTypeList,
		doc:          "delete removes old segments by retention.ms and retention.bytes; compact keeps the newest record per key; compact,delete does both.",
		kafkaDefault: "delete",
		value:        func(c partition.Config) string { return formatPolicy(c.CleanupPolicy) },
		validate:     validatePolicy,
		apply:        func(c *partition.Config, v string) { c.CleanupPolicy = parsePolicy(v) },
	},
	{
		name: "retention.ms", brokerNames: []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}, typ: kmsg.ConfigTypeLong,
		doc:          "Time in milliseconds a segment is kept after its newest record's timestamp, with cleanup.policy delete; -1 keeps forever.",
		kafkaDefault: "604800000",
		value:        func(c partition.Config) string { return formatMillis(c.RetentionTime) },
		validate:     intRange(-1, maxMillis),
		apply:        func(c *partition.Config, v string) { c.RetentionTime = millis(v) },
	},
	{
		name: "retention.bytes", brokerNames: []string{"log.retention.bytes"}, typ: kmsg.ConfigTypeLong,
		doc:          "Bytes a partition may hold before its oldest segments are deleted, with cleanup.policy delete; -1 is unbounded.",
		kafkaDefault: "-1",
		value:        func(c partition.Config) string { return strconv.FormatInt(c.RetentionBytes, 10) },
		validate:     intRange(-1, math.MaxInt64),
		apply:        func(c *partition.Config, v string) { c.RetentionBytes = mustInt(v) },
	},
	{
		name: "delete.retention.ms", brokerNames: []string{"log.cleaner.delete.retention.ms"}, typ: kmsg.ConfigTypeLong,
		doc:          "Time in milliseconds a compacted topic keeps tombstones (records with a null value) after compaction reaches them.",
		kafkaDefault: "86400000",
		value:        func(c partition.Config) string { return formatMillis(c.DeleteRetention) },
		validate:     intRange(0, maxMillis),
		apply:        func(c *partition.Config, v string) { c.DeleteRetention = millis(v) },
	},
	{
		name: "min.compaction.lag.ms", brokerNames: []string{"log.cleaner.min.compaction.lag.ms"}, typ: kmsg.ConfigTypeLong,
		doc:          "Minimum age in milliseconds before compaction may remove a record.",
		kafkaDefault: "0",
		value:        func(c partition.Config) string { return formatMillis(c.MinCompactionLag) },
		validate:     intRange(0, maxMillis),
		apply:        func(c *partition.Config, v string) { c.MinCompactionLag = millis(v) },
	},
	{
		name: "max.compaction.lag.ms", brokerNames: []string{"log.cleaner.max.compaction.lag.ms"}, typ: kmsg.ConfigTypeLong,
		doc:          "Age in milliseconds after which a record is compacted even below min.cleanable.dirty.ratio.",
		kafkaDefault: "9223372036854775807",
		value:        func(c partition.Config) string { return formatMillis(c.MaxCompactionLag) },
		validate:     intRange(1, math.MaxInt64),
		apply:        func(c *partition.Config, v string) { c.MaxCompactionLag = millis(v) },
	},
	{
		name: "min.cleanable.dirty.ratio", brokerNames: []string{"log.cleaner.min.cleanable.ratio"}, typ: kmsg.ConfigTypeDouble,
		doc:          "Share of a compacted log that must be uncompacted before the cleaner compacts it.",
		kafkaDefault: "0.5",
		value:        func(c partition.Config) string { return strconv.FormatFloat(c.MinCleanableDirtyRatio, 'g', -1, 64) },
		validate:     floatRange(0, 1),
		apply: func(c *partition.Config, v string) {
			c.MinCleanableDirtyRatio, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		},
	},

	{
		name: "min.insync.replicas", brokerNames: []string{"min.insync.replicas"}, typ: kmsg.ConfigTypeInt,
		doc: "Replicas, the leader included, that must be in sync for an acks=all produce to be accepted " +
			"(NOT_ENOUGH_REPLICAS otherwise); acks=0 and acks=1 are not refused.",
		kafkaDefault: "1",
		value: func(c partition.Config) string {
			return strconv.Itoa(max(c.MinInSyncReplicas, 1))
		},
		validate: intRange(1, math.MaxInt32),
		apply:    func(c *partition.Config, v string) { c.MinInSyncReplicas = int(mustInt(v)) },
	},

	// Accepted for compatibility; Sluice has no use for them.
	{name: "compression.type", brokerNames: []string{"compression.type"}, typ: kmsg.ConfigTypeString, kafkaDefault: "producer",
		doc: "Sluice stores batches as produced; only producer is accepted.", validate: oneOf("producer")},
	{name: "file.delete.delay.ms", brokerNames: []string{"log.segment.delete.delay.ms"}, typ: kmsg.ConfigTypeLong, kafkaDefault: "60000",
		doc: "Delay before a deleted segment's files are removed.", validate: intRange(0, math.MaxInt64),
		noEffect: "Sluice removes a deleted segment's files once no reader holds them."},
	{name: "flush.messages", brokerNames: []string{"log.flush.interval.messages"}, typ: kmsg.ConfigTypeLong, kafkaDefault: "9223372036854775807",
		doc: "Records written between two fsyncs.", validate: intRange(1, math.MaxInt64),
		noEffect: "Sluice's broker setting log.flush.mode decides fsyncs; the default, sync, fsyncs every acknowledged write."},
	{name: "flush.ms", brokerNames: []string{"log.flush.interval.ms"}, typ: kmsg.ConfigTypeLong, kafkaDefault: "9223372036854775807",
		doc: "Milliseconds between two fsyncs.", validate: intRange(0, math.MaxInt64),
		noEffect: "Sluice's broker setting log.flush.mode decides fsyncs; the default, sync, fsyncs every acknowledged write."},
	{name: "segment.index.bytes", brokerNames: []string{"log.index.size.max.bytes"}, typ: kmsg.ConfigTypeInt, kafkaDefault: "10485760",
		doc: "Size of a segment's offset and time index files.", validate: intRange(4, math.MaxInt32),
		noEffect: "Sluice sizes its indexes to the segment."},
	{name: "segment.jitter.ms", brokerNames: []string{"log.roll.jitter.ms"}, typ: kmsg.ConfigTypeLong, kafkaDefault: "0",
		doc: "Random jitter subtracted from segment.ms.", validate: intRange(0, math.MaxInt64),
		noEffect: "Sluice rolls at segment.ms exactly."},
	{name: "unclean.leader.election.enable", brokerNames: []string{"unclean.leader.election.enable"}, typ: kmsg.ConfigTypeBoolean, kafkaDefault: "false",
		doc: "Let an out-of-sync replica become leader.", validate: boolean,
		noEffect: "Sluice runs one replica per partition."},
	{name: "preallocate", brokerNames: []string{"log.preallocate"}, typ: kmsg.ConfigTypeBoolean, kafkaDefault: "false",
		doc: "Preallocate segment files.", validate: boolean,
		noEffect: "Sluice grows segment files as it writes."},
	{name: "message.downconversion.enable", brokerNames: []string{"log.message.downconversion.enable"}, typ: kmsg.ConfigTypeBoolean, kafkaDefault: "true",
		doc: "Down-convert batches for Fetch v0-3 clients.",
		validate: func(v string) error {
			if err := boolean(v); err != nil {
				return err
			}
			if strings.EqualFold(strings.TrimSpace(v), "false") {
				return fmt.Errorf("Sluice always down-converts for Fetch v0-3 clients; remove the setting")
			}
			return nil
		}},
	{name: "local.retention.ms", brokerNames: []string{"log.local.retention.ms"}, typ: kmsg.ConfigTypeLong, kafkaDefault: "-2",
		doc: "Local retention of tiered storage; -2 follows retention.ms.", validate: intRange(-2, math.MaxInt64),
		noEffect: "Sluice has no tiered storage: retention.ms applies."},
	{name: "local.retention.bytes", brokerNames: []string{"log.local.retention.bytes"}, typ: kmsg.ConfigTypeLong, kafkaDefault: "-2",
		doc: "Local retention of tiered storage; -2 follows retention.bytes.", validate: intRange(-2, math.MaxInt64),
		noEffect: "Sluice has no tiered storage: retention.bytes applies."},
	{name: DeadLetterGroupEnable, typ: kmsg.ConfigTypeBoolean, kafkaDefault: "false",
		doc: "Whether share groups may write dead letters to this topic (KIP-1191): a group's errors.deadletterqueue.topic.name " +
			"is used only when its topic sets this to true (a dead-letter topic the broker auto-creates does); otherwise its " +
			"records are archived without dead letters.",
		validate: boolean},
	{name: "remote.storage.enable", brokerNames: []string{"remote.storage.enable"}, typ: kmsg.ConfigTypeBoolean, kafkaDefault: "false",
		doc: "Tiered storage (KIP-405); Sluice has none, so only false is accepted.",
		validate: func(v string) error {
			if err := boolean(v); err != nil {
				return err
			}
			if strings.EqualFold(strings.TrimSpace(v), "true") {
				return fmt.Errorf("Sluice has no tiered storage; remove the setting or set it to false")
			}
			return nil
		}},
}

// DeadLetterGroupEnable is KIP-1191's topic config that lets share groups
// use the topic as their dead-letter topic (default false).
const DeadLetterGroupEnable = "errors.deadletterqueue.group.enable"

// defaultName is the name DescribeConfigs gives the config's default: its
// first broker-level name, or its own without one.
func (tc topicConfig) defaultName() string {
	if len(tc.brokerNames) == 0 {
		return tc.name
	}
	return tc.brokerNames[0]
}

// maxMillis is the largest millisecond count a time.Duration holds.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// findTopicConfig returns the definition of a topic config name.
func findTopicConfig(name string) (topicConfig, bool) {
	for _, tc := range topicConfigs {
		if tc.name == name {
			return tc, true
		}
	}
	return topicConfig{}, false
}

// IsTopicList reports a topic config whose value is a list (APPEND and
// SUBTRACT apply to it).
func IsTopicList(name string) bool {
	tc, ok := findTopicConfig(name)
	return ok && tc.typ == kmsg.ConfigTypeList
}

// documentation returns the config's documentation, saying when Sluice
// accepts it without effect.
func (tc topicConfig) documentation() string {
	if tc.noEffect != "" {
		return tc.doc + " No effect in Sluice: " + tc.noEffect
	}
	return tc.doc
}

// ValidateTopic checks every topic config override by itself; the error
// is an INVALID_CONFIG with a message naming the config and the fix. Checks
// across configs (max.compaction.lag.ms above min.compaction.lag.ms) are
// ResolveTopic's.
func ValidateTopic(configs map[string]string) error {
	names := make([]string, 0, len(configs))
	for name := range configs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := configs[name]
		tc, ok := findTopicConfig(name)
		if !ok {
			return fmt.Errorf("unknown topic config %q (see DescribeConfigs for the ones Sluice knows): %w", name, kerr.InvalidConfig)
		}
		if err := tc.validate(value); err != nil {
			return fmt.Errorf("topic config %s=%q: %v: %w", name, value, err, kerr.InvalidConfig)
		}
	}
	return nil
}

// partitionConfig returns the broker defaults with the overrides applied,
// in table order. The overrides must have passed ValidateTopic.
func partitionConfig(defaults partition.Config, overrides map[string]string) partition.Config {
	cfg := defaults
	for _, tc := range topicConfigs {
		if v, ok := overrides[tc.name]; ok && tc.apply != nil {
			tc.apply(&cfg, v)
		}
	}
	return cfg
}

// ResolveTopic returns a topic's partition config: the broker defaults
// (the effective Broker's Partition) with the topic's overrides applied in
// table order, validated alone and together, as INVALID_CONFIG.
func ResolveTopic(defaults partition.Config, overrides map[string]string) (partition.Config, error) {
	if err := ValidateTopic(overrides); err != nil {
		return partition.Config{}, err
	}
	cfg := partitionConfig(defaults, overrides)
	if err := cfg.Validate(); err != nil {
		return partition.Config{}, fmt.Errorf("%s: %w", strings.TrimPrefix(err.Error(), "partition: "), kerr.InvalidConfig)
	}
	return cfg, nil
}

// DescribeTopic returns every topic config of a topic with overrides,
// sorted by name, with values resolved override > dynamic broker > static
// broker > default, as DescribeConfigs reports them.
func (b Layers) DescribeTopic(overrides map[string]string) []Entry {
	effective := b.Effective().Partition
	entries := make([]Entry, 0, len(topicConfigs))
	for _, tc := range topicConfigs {
		e := Entry{Name: tc.name, Type: tc.typ, Documentation: tc.documentation()}
		if v, ok := overrides[tc.name]; ok {
			e.Synonyms = append(e.Synonyms, Synonym{Name: tc.name, Value: v, Source: kmsg.ConfigSourceDynamicTopicConfig})
		}
		if tc.apply != nil {
			e.Synonyms = append(e.Synonyms, b.synonyms(tc.brokerNames)...)
		}
		static := tc.kafkaDefault
		if tc.value != nil {
			static = tc.value(b.Static.Partition)
		}
		if static != tc.kafkaDefault {
			e.Synonyms = append(e.Synonyms, Synonym{Name: tc.defaultName(), Value: static, Source: kmsg.ConfigSourceStaticBrokerConfig})
		}
		e.Synonyms = append(e.Synonyms, Synonym{Name: tc.defaultName(), Value: tc.kafkaDefault, Source: kmsg.ConfigSourceDefaultConfig})

		first := e.Synonyms[0]
		e.Value, e.Source = first.Value, first.Source
		if first.Source != kmsg.ConfigSourceDynamicTopicConfig && tc.value != nil {
			// A broker synonym may be in other units (log.retention.hours).
			e.Value = tc.value(effective)
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries
}
