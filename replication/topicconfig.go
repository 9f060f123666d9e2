package replication

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

// ConfigEntry is one config as DescribeConfigs reports it.
type ConfigEntry struct {
	Name  string
	Value string
	// Source says where Value comes from: a topic override, a broker
	// setting or the built-in default.
	Source        kmsg.ConfigSource
	ReadOnly      bool
	Sensitive     bool
	Type          kmsg.ConfigType
	Documentation string
	// Synonyms lists the entries Value was chosen among, most specific
	// first (the topic override, then the broker setting, then the
	// default), as Kafka reports them.
	Synonyms []ConfigSynonym
}

// ConfigSynonym is one candidate value of a config.
type ConfigSynonym struct {
	Name   string
	Value  string
	Source kmsg.ConfigSource
}

// topicConfig describes one topic-level config Sluice understands.
type topicConfig struct {
	name string
	// brokerName is the broker-level default's name (log.segment.bytes for
	// segment.bytes).
	brokerName string
	typ        kmsg.ConfigType
	doc        string
	// kafkaDefault is Kafka's built-in default; a broker value equal to it
	// is reported as DEFAULT_CONFIG, anything else as STATIC_BROKER_CONFIG.
	kafkaDefault string
	// brokerValue reads the broker default from the node's partition
	// defaults; nil means the Kafka default is the broker value.
	brokerValue func(partition.Config) string
	// validate parses a value; the error says what is wrong.
	validate func(string) error
	// apply sets the parsed value on a partition config; nil for configs
	// stored now and enforced by a later component (retention, cleaner).
	apply func(*partition.Config, string)
}

var topicConfigs = []topicConfig{
	{
		name: "segment.bytes", brokerName: "log.segment.bytes", typ: kmsg.ConfigTypeInt,
		doc:          "Size in bytes at which a partition's active segment file is rolled.",
		kafkaDefault: "1073741824",
		brokerValue:  func(c partition.Config) string { return strconv.FormatInt(c.Log.SegmentBytes, 10) },
		validate:     intRange(14, math.MaxInt32),
		apply:        func(c *partition.Config, v string) { c.Log.SegmentBytes = mustInt(v) },
	},
	{
		name: "segment.ms", brokerName: "log.roll.ms", typ: kmsg.ConfigTypeLong,
		doc:          "Age in milliseconds after which the active segment is rolled even if not full.",
		kafkaDefault: "604800000",
		brokerValue:  func(c partition.Config) string { return strconv.FormatInt(c.Log.SegmentAge.Milliseconds(), 10) },
		validate:     intRange(1, math.MaxInt64),
		apply:        func(c *partition.Config, v string) { c.Log.SegmentAge = time.Duration(mustInt(v)) * time.Millisecond },
	},
	{
		name: "index.interval.bytes", brokerName: "log.index.interval.bytes", typ: kmsg.ConfigTypeInt,
		doc:          "Bytes of log between two entries of the sparse offset and time indexes.",
		kafkaDefault: "4096",
		brokerValue:  func(c partition.Config) string { return strconv.Itoa(c.Log.IndexIntervalBytes) },
		validate:     intRange(0, math.MaxInt32),
		apply:        func(c *partition.Config, v string) { c.Log.IndexIntervalBytes = int(mustInt(v)) },
	},
	{
		name: "max.message.bytes", brokerName: "message.max.bytes", typ: kmsg.ConfigTypeInt,
		doc:          "Largest record batch, in bytes, the partition accepts.",
		kafkaDefault: "1048588",
		brokerValue:  func(c partition.Config) string { return strconv.Itoa(c.MaxMessageBytes) },
		validate:     intRange(0, math.MaxInt32),
		apply:        func(c *partition.Config, v string) { c.MaxMessageBytes = int(mustInt(v)) },
	},
	{
		name: "message.timestamp.type", brokerName: "log.message.timestamp.type", typ: kmsg.ConfigTypeString,
		doc:          "CreateTime keeps producer timestamps; LogAppendTime stamps batches with the broker's clock.",
		kafkaDefault: "CreateTime",
		brokerValue: func(c partition.Config) string {
			if c.TimestampType == partition.LogAppendTime {
				return "LogAppendTime"
			}
			return "CreateTime"
		},
		validate: oneOf("CreateTime", "LogAppendTime"),
		apply: func(c *partition.Config, v string) {
			c.TimestampType = partition.CreateTime
			if v == "LogAppendTime" {
				c.TimestampType = partition.LogAppendTime
			}
		},
	},
	// Stored and described now; enforced by retention and compaction.
	{name: "cleanup.policy", brokerName: "log.cleanup.policy", typ: kmsg.ConfigTypeList, kafkaDefault: "delete",
		doc: "delete removes old segments by retention; compact keeps the newest record per key.", validate: listOf("delete", "compact")},
	{name: "retention.ms", brokerName: "log.retention.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "604800000",
		doc: "Time in milliseconds a segment is kept after its newest record; -1 keeps forever.", validate: intRange(-1, math.MaxInt64)},
	{name: "retention.bytes", brokerName: "log.retention.bytes", typ: kmsg.ConfigTypeLong, kafkaDefault: "-1",
		doc: "Bytes a partition may hold before its oldest segments are deleted; -1 is unbounded.", validate: intRange(-1, math.MaxInt64)},
	{name: "delete.retention.ms", brokerName: "log.cleaner.delete.retention.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "86400000",
		doc: "Time in milliseconds tombstones are kept in a compacted topic.", validate: intRange(0, math.MaxInt64)},
	{name: "min.compaction.lag.ms", brokerName: "log.cleaner.min.compaction.lag.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "0",
		doc: "Minimum time a record stays uncompacted.", validate: intRange(0, math.MaxInt64)},
	{name: "max.compaction.lag.ms", brokerName: "log.cleaner.max.compaction.lag.ms", typ: kmsg.ConfigTypeLong, kafkaDefault: "9223372036854775807",
		doc: "Maximum time a record stays uncompacted.", validate: intRange(1, math.MaxInt64)},
	{name: "min.cleanable.dirty.ratio", brokerName: "log.cleaner.min.cleanable.ratio", typ: kmsg.ConfigTypeDouble, kafkaDefault: "0.5",
		doc: "Share of the log that must be uncompacted before the cleaner runs.", validate: floatRange(0, 1)},
	{name: "min.insync.replicas", brokerName: "min.insync.replicas", typ: kmsg.ConfigTypeInt, kafkaDefault: "1",
		doc: "Replicas that must acknowledge an acks=all write.", validate: intRange(1, math.MaxInt32)},
	{name: "compression.type", brokerName: "compression.type", typ: kmsg.ConfigTypeString, kafkaDefault: "producer",
		doc: "Sluice stores batches as produced; only producer is accepted.", validate: oneOf("producer")},
}

// findTopicConfig returns the definition of a topic config name.
func findTopicConfig(name string) (topicConfig, bool) {
	for _, tc := range topicConfigs {
		if tc.name == name {
			return tc, true
		}
	}
	return topicConfig{}, false
}

// validateTopicConfigs checks every override; the error is an
// INVALID_CONFIG with a message naming the config and the fix.
func validateTopicConfigs(configs map[string]string) error {
	for name, value := range configs {
		tc, ok := findTopicConfig(name)
		if !ok {
			return fmt.Errorf("unknown topic config %q: %w", name, kerr.InvalidConfig)
		}
		if err := tc.validate(value); err != nil {
			return fmt.Errorf("%s=%q: %v: %w", name, value, err, kerr.InvalidConfig)
		}
	}
	return nil
}

// partitionConfig returns the broker defaults with the overrides applied.
// The overrides must have passed validateTopicConfigs.
func partitionConfig(defaults partition.Config, overrides map[string]string) partition.Config {
	cfg := defaults
	for name, value := range overrides {
		if tc, ok := findTopicConfig(name); ok && tc.apply != nil {
			tc.apply(&cfg, value)
		}
	}
	return cfg
}

// describeTopicConfigs returns every topic config, sorted by name, with
// values resolved override > broker > default.
func describeTopicConfigs(defaults partition.Config, overrides map[string]string) []ConfigEntry {
	entries := make([]ConfigEntry, 0, len(topicConfigs))
	for _, tc := range topicConfigs {
		broker := tc.kafkaDefault
		if tc.brokerValue != nil {
			broker = tc.brokerValue(defaults)
		}
		brokerSource := kmsg.ConfigSourceDefaultConfig
		if broker != tc.kafkaDefault {
			brokerSource = kmsg.ConfigSourceStaticBrokerConfig
		}
		e := ConfigEntry{Name: tc.name, Value: broker, Source: brokerSource, Type: tc.typ, Documentation: tc.doc}
		if v, ok := overrides[tc.name]; ok {
			e.Value, e.Source = v, kmsg.ConfigSourceDynamicTopicConfig
			e.Synonyms = append(e.Synonyms, ConfigSynonym{Name: tc.name, Value: v, Source: kmsg.ConfigSourceDynamicTopicConfig})
		}
		if brokerSource == kmsg.ConfigSourceStaticBrokerConfig {
			e.Synonyms = append(e.Synonyms, ConfigSynonym{Name: tc.brokerName, Value: broker, Source: brokerSource})
		}
		e.Synonyms = append(e.Synonyms, ConfigSynonym{Name: tc.brokerName, Value: tc.kafkaDefault, Source: kmsg.ConfigSourceDefaultConfig})
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries
}

func mustInt(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		return nil
	}
}

func floatRange(lo, hi float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		if f < lo || f > hi {
			return fmt.Errorf("must be between %g and %g", lo, hi)
		}
		return nil
	}
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

func listOf(allowed ...string) func(string) error {
	one := oneOf(allowed...)
	return func(v string) error {
		parts := strings.Split(v, ",")
		for _, p := range parts {
			if err := one(strings.TrimSpace(p)); err != nil {
				return fmt.Errorf("%q: %w", p, err)
			}
		}
		return nil
	}
}
