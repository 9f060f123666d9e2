package replication

import (
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeBrokerConfigs returns the broker's configs, as DescribeConfigs
// reports them for the BROKER resource. They are static (set in the config
// file, environment or flags) and so read-only.
func (c *Cluster) DescribeBrokerConfigs() []ConfigEntry {
	entries := []ConfigEntry{
		brokerEntry("node.id", strconv.Itoa(int(c.cfg.NodeID)), "0", kmsg.ConfigTypeInt, "This broker's id."),
		brokerEntry("broker.id", strconv.Itoa(int(c.cfg.NodeID)), "0", kmsg.ConfigTypeInt, "Synonym of node.id."),
		brokerEntry("log.dirs", c.cfg.DataDir, "./data", kmsg.ConfigTypeString, "Directory holding the broker's data."),
		brokerEntry("advertised.listeners", "PLAINTEXT://"+c.cfg.AdvertisedHost+":"+strconv.Itoa(int(c.cfg.AdvertisedPort)), "PLAINTEXT://127.0.0.1:9092", kmsg.ConfigTypeString, "Address clients are told to connect to."),
		brokerEntry("num.partitions", strconv.Itoa(int(c.cfg.DefaultPartitions)), "1", kmsg.ConfigTypeInt, "Partition count of auto-created topics."),
		brokerEntry("auto.create.topics.enable", strconv.FormatBool(c.cfg.AutoCreateTopics), "true", kmsg.ConfigTypeBoolean, "Create unknown topics when they are first used."),
		brokerEntry("default.replication.factor", "1", "1", kmsg.ConfigTypeInt, "Replication factor of auto-created topics."),
	}
	// Topic defaults, under their broker-level names.
	for _, e := range describeTopicConfigs(c.cfg.Partition, nil) {
		tc, _ := findTopicConfig(e.Name)
		entries = append(entries, brokerEntry(tc.brokerName, e.Value, tc.kafkaDefault, e.Type, tc.doc))
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return entries
}

func brokerEntry(name, value, kafkaDefault string, typ kmsg.ConfigType, doc string) ConfigEntry {
	source := kmsg.ConfigSourceDefaultConfig
	if value != kafkaDefault {
		source = kmsg.ConfigSourceStaticBrokerConfig
	}
	return ConfigEntry{
		Name: name, Value: value, Source: source, ReadOnly: true, Type: typ, Documentation: doc,
		Synonyms: []ConfigSynonym{{Name: name, Value: value, Source: source}},
	}
}
