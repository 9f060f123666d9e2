package configs

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition"
)

func TestTopicConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		configs map[string]string
		// wantErr is a substring of the INVALID_CONFIG message; "" means
		// valid.
		wantErr string
		check   func(partition.Config) bool
	}{
		{"delete", map[string]string{"cleanup.policy": "delete"}, "", func(c partition.Config) bool { return c.CleanupPolicy == partition.CleanupDelete }},
		{"compact", map[string]string{"cleanup.policy": "compact"}, "", func(c partition.Config) bool { return c.CleanupPolicy == partition.CleanupCompact }},
		{"compact,delete", map[string]string{"cleanup.policy": "compact,delete"}, "", func(c partition.Config) bool {
			return c.CleanupPolicy == partition.CleanupCompact|partition.CleanupDelete
		}},
		{"policy with spaces", map[string]string{"cleanup.policy": "delete, compact"}, "", func(c partition.Config) bool {
			return c.CleanupPolicy == partition.CleanupCompact|partition.CleanupDelete
		}},
		{"empty policy", map[string]string{"cleanup.policy": ""}, "cleanup.policy", nil},
		{"bad policy", map[string]string{"cleanup.policy": "shred"}, "cleanup.policy", nil},
		{"retention forever", map[string]string{"retention.ms": "-1"}, "", func(c partition.Config) bool { return c.RetentionTime < 0 }},
		{"retention ms", map[string]string{"retention.ms": "1000"}, "", func(c partition.Config) bool { return c.RetentionTime == time.Second }},
		{"retention -2", map[string]string{"retention.ms": "-2"}, "retention.ms", nil},
		{"retention bytes", map[string]string{"retention.bytes": "4096"}, "", func(c partition.Config) bool { return c.RetentionBytes == 4096 }},
		{"delete retention", map[string]string{"delete.retention.ms": "5"}, "", func(c partition.Config) bool { return c.DeleteRetention == 5*time.Millisecond }},
		{"lags", map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "20"}, "", func(c partition.Config) bool {
			return c.MinCompactionLag == 10*time.Millisecond && c.MaxCompactionLag == 20*time.Millisecond
		}},
		{"max lag below min lag", map[string]string{"min.compaction.lag.ms": "20", "max.compaction.lag.ms": "10"}, "max.compaction.lag.ms", nil},
		{"max lag Long.MAX_VALUE", map[string]string{"max.compaction.lag.ms": "9223372036854775807"}, "", func(c partition.Config) bool { return c.MaxCompactionLag == math.MaxInt64 }},
		{"dirty ratio", map[string]string{"min.cleanable.dirty.ratio": "0.01"}, "", func(c partition.Config) bool { return c.MinCleanableDirtyRatio == 0.01 }},
		{"dirty ratio above 1", map[string]string{"min.cleanable.dirty.ratio": "1.5"}, "min.cleanable.dirty.ratio", nil},
		{"before and after", map[string]string{"message.timestamp.before.max.ms": "1000", "message.timestamp.after.max.ms": "2000"}, "", func(c partition.Config) bool {
			return c.TimestampBeforeMax == time.Second && c.TimestampAfterMax == 2*time.Second
		}},
		{"deprecated difference sets both", map[string]string{"message.timestamp.difference.max.ms": "3000"}, "", func(c partition.Config) bool {
			return c.TimestampBeforeMax == 3*time.Second && c.TimestampAfterMax == 3*time.Second
		}},
		{"before wins over difference", map[string]string{"message.timestamp.difference.max.ms": "3000", "message.timestamp.before.max.ms": "1000"}, "", func(c partition.Config) bool {
			return c.TimestampBeforeMax == time.Second && c.TimestampAfterMax == 3*time.Second
		}},
		{"no-effect configs", map[string]string{
			"file.delete.delay.ms": "0", "flush.messages": "1", "flush.ms": "1000", "segment.index.bytes": "4096", "segment.jitter.ms": "10",
			"unclean.leader.election.enable": "true", "preallocate": "false", "message.downconversion.enable": "true",
			"local.retention.ms": "-2", "local.retention.bytes": "1000", "remote.storage.enable": "false",
		}, "", func(c partition.Config) bool { return c == partition.DefaultConfig() }},
		{"min.insync.replicas", map[string]string{"min.insync.replicas": "2"}, "", func(c partition.Config) bool { return c.MinInSyncReplicas == 2 }},
		{"min.insync.replicas 0", map[string]string{"min.insync.replicas": "0"}, "min.insync.replicas", nil},
		{"index interval applies", map[string]string{"index.interval.bytes": "100"}, "", func(c partition.Config) bool { return c.Log.IndexIntervalBytes == 100 }},
		{"remote storage true", map[string]string{"remote.storage.enable": "true"}, "tiered storage", nil},
		{"downconversion false", map[string]string{"message.downconversion.enable": "false"}, "down-converts", nil},
		{"bad boolean", map[string]string{"preallocate": "yes"}, "true or false", nil},
		{"flush.messages 0", map[string]string{"flush.messages": "0"}, "flush.messages", nil},
		{"unknown", map[string]string{"retention.forever": "1"}, "unknown topic config", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ResolveTopic(partition.DefaultConfig(), tt.configs)
			if tt.wantErr != "" {
				if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want INVALID_CONFIG mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Fatalf("config %+v", cfg)
			}
		})
	}
}

func TestEveryTopicConfigHasDocumentationAndValidates(t *testing.T) {
	for _, tc := range topicConfigs {
		if tc.doc == "" || len(tc.brokerNames) == 0 && tc.apply != nil || tc.validate == nil {
			t.Errorf("%s: incomplete definition", tc.name)
		}
		if err := tc.validate(tc.kafkaDefault); err != nil {
			t.Errorf("%s: Kafka's default %q does not validate: %v", tc.name, tc.kafkaDefault, err)
		}
		if tc.value != nil {
			if got := tc.value(partition.DefaultConfig()); got != tc.kafkaDefault {
				t.Errorf("%s: default partition config gives %q, Kafka's default is %q", tc.name, got, tc.kafkaDefault)
			}
		}
	}
}

func TestDescribeSourcesAndSynonyms(t *testing.T) {
	static := defaultBroker()
	static.Partition.RetentionBytes = 1000 // a static broker setting
	b := Layers{
		Static:         static,
		ClusterDefault: map[string]string{"log.retention.hours": "2", "log.cleanup.policy": "compact"},
		Node:           map[string]string{"log.retention.minutes": "30"},
	}
	entries := b.DescribeTopic(map[string]string{"cleanup.policy": "delete"})
	byName := map[string]Entry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	synonyms := func(e Entry) string {
		var parts []string
		for _, s := range e.Synonyms {
			parts = append(parts, s.Name+"="+s.Value+"@"+s.Source.String())
		}
		return strings.Join(parts, " ")
	}
	tests := []struct {
		name, value string
		source      kmsg.ConfigSource
		synonyms    string
	}{
		{"retention.ms", "1800000", kmsg.ConfigSourceDynamicBrokerConfig,
			"log.retention.minutes=30@DYNAMIC_BROKER_CONFIG log.retention.hours=2@DYNAMIC_DEFAULT_BROKER_CONFIG log.retention.ms=604800000@DEFAULT_CONFIG"},
		{"cleanup.policy", "delete", kmsg.ConfigSourceDynamicTopicConfig,
			"cleanup.policy=delete@DYNAMIC_TOPIC_CONFIG log.cleanup.policy=compact@DYNAMIC_DEFAULT_BROKER_CONFIG log.cleanup.policy=delete@DEFAULT_CONFIG"},
		{"retention.bytes", "1000", kmsg.ConfigSourceStaticBrokerConfig,
			"log.retention.bytes=1000@STATIC_BROKER_CONFIG log.retention.bytes=-1@DEFAULT_CONFIG"},
		{"segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig, "log.segment.bytes=1073741824@DEFAULT_CONFIG"},
	}
	for _, tt := range tests {
		e := byName[tt.name]
		if e.Value != tt.value || e.Source != tt.source || synonyms(e) != tt.synonyms {
			t.Errorf("%s = %s (%s) synonyms %s\nwant %s (%s) synonyms %s", tt.name, e.Value, e.Source, synonyms(e), tt.value, tt.source, tt.synonyms)
		}
	}
}

func TestDeadLetterGroupEnable(t *testing.T) {
	if err := ValidateTopic(map[string]string{DeadLetterGroupEnable: "true"}); err != nil {
		t.Fatalf("%s=true: %v", DeadLetterGroupEnable, err)
	}
	if err := ValidateTopic(map[string]string{DeadLetterGroupEnable: "yes"}); err == nil {
		t.Fatalf("%s=yes validated", DeadLetterGroupEnable)
	}
	b := Layers{Static: defaultBroker()}
	for _, overrides := range []map[string]string{nil, {DeadLetterGroupEnable: "true"}} {
		for _, e := range b.DescribeTopic(overrides) {
			if e.Name != DeadLetterGroupEnable {
				continue
			}
			want, source := "false", kmsg.ConfigSourceDefaultConfig
			if overrides != nil {
				want, source = "true", kmsg.ConfigSourceDynamicTopicConfig
			}
			if e.Value != want || e.Source != source || e.Synonyms[len(e.Synonyms)-1].Name != DeadLetterGroupEnable {
				t.Errorf("overrides %v: %+v, want %s from %v with its own name as the default's", overrides, e, want, source)
			}
		}
	}
	for _, e := range b.DescribeBroker() {
		if e.Name == DeadLetterGroupEnable {
			t.Errorf("broker configs list the topic-only %s", DeadLetterGroupEnable)
		}
	}
}
