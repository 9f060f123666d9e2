package configs

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestValidateGroup(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overrides map[string]string
		ok        bool
	}{
		{"none", nil, true},
		{"every config", map[string]string{
			"share.record.lock.duration.ms": "15000", "share.delivery.count.limit": "10",
			"share.auto.offset.reset": "earliest", "share.isolation.level": "read_committed",
			"share.session.timeout.ms": "60000", "share.heartbeat.interval.ms": "15000",
			"errors.deadletterqueue.topic.name": "dlq.orders", "errors.deadletterqueue.copy.record.enable": "true",
		}, true},
		{"by duration", map[string]string{"share.auto.offset.reset": "by_duration:P1DT2H30M"}, true},
		{"by duration seconds", map[string]string{"share.auto.offset.reset": "by_duration:PT0.5S"}, true},
		{"unknown config", map[string]string{"share.nonsense": "1"}, false},
		{"lock below the minimum", map[string]string{"share.record.lock.duration.ms": "1000"}, false},
		{"delivery limit above the maximum", map[string]string{"share.delivery.count.limit": "11"}, false},
		{"delivery limit not a number", map[string]string{"share.delivery.count.limit": "five"}, false},
		{"bad reset", map[string]string{"share.auto.offset.reset": "none"}, false},
		{"bad duration", map[string]string{"share.auto.offset.reset": "by_duration:1h"}, false},
		{"negative duration", map[string]string{"share.auto.offset.reset": "by_duration:-PT1H"}, false},
		{"bad isolation", map[string]string{"share.isolation.level": "serializable"}, false},
		{"internal dead-letter topic", map[string]string{"errors.deadletterqueue.topic.name": "__consumer_offsets"}, false},
		{"illegal dead-letter topic", map[string]string{"errors.deadletterqueue.topic.name": "a/b"}, false},
		{"heartbeat at its maximum, session at its minimum", map[string]string{"share.session.timeout.ms": "45000", "share.heartbeat.interval.ms": "15000"}, true},
		{"session below the minimum", map[string]string{"share.session.timeout.ms": "6000"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateGroup(tc.overrides)
			if tc.ok && err != nil {
				t.Fatalf("ValidateGroup: %v", err)
			}
			if !tc.ok && !errors.Is(err, kerr.InvalidConfig) {
				t.Fatalf("ValidateGroup: %v, want INVALID_CONFIG", err)
			}
		})
	}
}

func TestResolveShareGroup(t *testing.T) {
	if got := ResolveShareGroup(DefaultShareGroup(), nil); got != DefaultShareGroup() {
		t.Errorf("no overrides: %+v, want the defaults %+v", got, DefaultShareGroup())
	}
	got := ResolveShareGroup(DefaultShareGroup(), map[string]string{
		"share.record.lock.duration.ms": "20000", "share.delivery.count.limit": "3",
		"share.auto.offset.reset": "by_duration:PT1H30M", "share.isolation.level": "read_committed",
		"share.session.timeout.ms": "50000", "share.heartbeat.interval.ms": "6000",
		"errors.deadletterqueue.topic.name": "dlq.orders", "errors.deadletterqueue.copy.record.enable": "true",
	})
	want := ShareGroup{
		RecordLockDuration: 20 * time.Second, DeliveryCountLimit: 3,
		AutoOffsetReset: "by_duration:PT1H30M", ResetDuration: 90 * time.Minute, ReadCommitted: true,
		DeadLetterTopic: "dlq.orders", DeadLetterCopyRecord: true,
		SessionTimeout: 50 * time.Second, HeartbeatInterval: 6 * time.Second,
	}
	if got != want {
		t.Errorf("resolved %+v, want %+v", got, want)
	}
}

func TestDescribeGroup(t *testing.T) {
	broker := DefaultShareGroup()
	broker.RecordLockDuration, broker.SessionTimeout = 20*time.Second, 50*time.Second
	entries := DescribeGroup(broker, map[string]string{"share.delivery.count.limit": "3"})
	if len(entries) != len(groupConfigs) {
		t.Fatalf("%d entries, want %d", len(entries), len(groupConfigs))
	}
	for i, e := range entries {
		if i > 0 && entries[i-1].Name >= e.Name {
			t.Errorf("entries not sorted: %s before %s", entries[i-1].Name, e.Name)
		}
		switch e.Name {
		case "share.delivery.count.limit":
			if e.Value != "3" || e.Source != kmsg.ConfigSourceGroupConfig || len(e.Synonyms) != 2 {
				t.Errorf("override: %+v", e)
			}
		case "share.auto.offset.reset", "share.heartbeat.interval.ms":
			if e.Value != map[string]string{"share.auto.offset.reset": "latest", "share.heartbeat.interval.ms": "5000"}[e.Name] || e.Source != kmsg.ConfigSourceDefaultConfig {
				t.Errorf("default: %+v", e)
			}
		case "share.record.lock.duration.ms", "share.session.timeout.ms":
			if e.Value != map[string]string{"share.record.lock.duration.ms": "20000", "share.session.timeout.ms": "50000"}[e.Name] ||
				e.Source != kmsg.ConfigSourceStaticBrokerConfig || len(e.Synonyms) != 2 {
				t.Errorf("broker default: %+v", e)
			}
		}
	}
}

func TestValidateDeadLetterTopic(t *testing.T) {
	for _, tc := range []struct {
		name, topic, prefix string
		ok                  bool
	}{
		{"no topic", "", DefaultDeadLetterTopicPrefix, true},
		{"with the prefix", "dlq.orders", DefaultDeadLetterTopicPrefix, true},
		{"without the prefix", "orders.dlq", DefaultDeadLetterTopicPrefix, false},
		{"the prefix alone", "dlq.", DefaultDeadLetterTopicPrefix, false},
		{"prefix in the middle", "x.dlq.orders", DefaultDeadLetterTopicPrefix, false},
		{"no rule", "orders.dlq", "", true},
		{"another prefix", "dead-orders", "dead-", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateDeadLetterTopic(tc.topic, tc.prefix)
			if tc.ok && err != nil {
				t.Fatalf("ValidateDeadLetterTopic(%q, %q): %v", tc.topic, tc.prefix, err)
			}
			if !tc.ok && (!errors.Is(err, kerr.InvalidConfig) || !strings.Contains(err.Error(), tc.prefix)) {
				t.Fatalf("ValidateDeadLetterTopic(%q, %q): %v, want INVALID_CONFIG naming the prefix", tc.topic, tc.prefix, err)
			}
		})
	}
}

func TestDeadLetterBrokerConfigs(t *testing.T) {
	layers := Layers{Static: Broker{DeadLetterTopicPrefix: DefaultDeadLetterTopicPrefix}}
	if got := layers.Effective(); got.DeadLetterTopicPrefix != "dlq." || got.DeadLetterAutoCreate {
		t.Fatalf("static: prefix %q auto-create %v, want dlq. and false", got.DeadLetterTopicPrefix, got.DeadLetterAutoCreate)
	}
	layers.ClusterDefault = map[string]string{"errors.deadletterqueue.topic.name.prefix": "dead-", "errors.deadletterqueue.auto.create.topics.enable": "true"}
	if got := layers.Effective(); got.DeadLetterTopicPrefix != "dead-" || !got.DeadLetterAutoCreate {
		t.Fatalf("dynamic: prefix %q auto-create %v, want dead- and true", got.DeadLetterTopicPrefix, got.DeadLetterAutoCreate)
	}
	for _, bad := range []map[string]string{
		{"errors.deadletterqueue.topic.name.prefix": "a/b"},
		{"errors.deadletterqueue.topic.name.prefix": "__x"},
		{"errors.deadletterqueue.auto.create.topics.enable": "yes"},
	} {
		if err := ValidateBroker(bad); !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("ValidateBroker(%v): %v, want INVALID_CONFIG", bad, err)
		}
	}
	if err := ValidateBroker(map[string]string{"errors.deadletterqueue.topic.name.prefix": ""}); err != nil {
		t.Errorf("empty prefix (no rule): %v", err)
	}
}
