package configs

import "github.com/twmb/franz-go/pkg/kmsg"

// Entry is one config as DescribeConfigs reports it.
type Entry struct {
	Name  string
	Value string
	// Source says where Value comes from: a topic override, a dynamic
	// broker setting, the static broker setting or the built-in default.
	Source        kmsg.ConfigSource
	ReadOnly      bool
	Sensitive     bool
	Type          kmsg.ConfigType
	Documentation string
	// Synonyms lists the entries Value was chosen among, most specific
	// first (the topic override, then the dynamic per-broker and
	// cluster-default settings, then the static setting, then the
	// default), as Kafka reports them. The first one is in effect.
	Synonyms []Synonym
}

// Synonym is one candidate value of a config.
type Synonym struct {
	Name   string
	Value  string
	Source kmsg.ConfigSource
}
