package test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/cleaner"
)

// withCleaner changes the retention and cleaner schedules.
func withCleaner(change func(*cleaner.Config)) serverOption {
	return func(c *serverConfig) { change(&c.Replication.Cleaner) }
}

// describeTopic returns the configs of topic by name, with synonyms and
// documentation (kadm asks for both).
func describeTopic(tb testing.TB, adm *kadm.Client, topic string) map[string]kadm.Config {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		tb.Fatalf("describe %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		tb.Fatalf("describe %s: %v", topic, err)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

// wantConfig fails the test unless configs[name] has value and source.
func wantConfig(tb testing.TB, configs map[string]kadm.Config, name, value string, source kmsg.ConfigSource) {
	tb.Helper()
	c, ok := configs[name]
	if !ok {
		tb.Errorf("%s not described", name)
		return
	}
	if c.MaybeValue() != value || c.Source != source {
		tb.Errorf("%s = %q from %s, want %q from %s", name, c.MaybeValue(), c.Source, value, source)
	}
}

// alterErr returns the one error of an alter response set.
func alterErr(resps kadm.AlterConfigsResponses, err error) error {
	if err != nil {
		return err
	}
	for _, r := range resps {
		if r.Err != nil {
			return errors.Join(r.Err, errors.New(r.ErrMessage))
		}
	}
	return nil
}

func ptr(s string) *string { return &s }

// TestTopicConfigs creates a topic with configs, describes it with sources
// and synonyms, changes it with IncrementalAlterConfigs and AlterConfigs,
// sets dynamic broker defaults, and checks everything survives a restart.
func TestTopicConfigs(t *testing.T) {
	srv := startServer(t, withCleaner(func(*cleaner.Config) {}))
	adm := newAdmin(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	resp, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": ptr("3600000"), "cleanup.policy": ptr("delete")}, "configured")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	configs := describeTopic(t, adm, "configured")
	wantConfig(t, configs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, configs, "segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig)
	if syn := configs["retention.ms"].Synonyms; len(syn) != 2 || syn[0].Key != "retention.ms" || syn[1].Key != "log.retention.ms" ||
		syn[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("retention.ms synonyms %+v", syn)
	}

	// Incremental: SET, APPEND to a list, DELETE; APPEND to a non-list
	// fails and changes nothing.
	err = alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.bytes", Value: ptr("1048576")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: ptr("compact")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, "configured"))
	if err != nil {
		t.Fatal(err)
	}
	err = alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "retention.bytes", Value: ptr("1")}}, "configured"))
	if !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("APPEND to retention.bytes: %v, want INVALID_CONFIG", err)
	}
	// Dynamic broker default for the whole cluster.
	if err := alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.hours", Value: ptr("48")}})); err != nil {
		t.Fatal(err)
	}

	check := func(when string) {
		t.Helper()
		configs := describeTopic(t, adm, "configured")
		wantConfig(t, configs, "retention.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig)
		wantConfig(t, configs, "cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig)
		wantConfig(t, configs, "retention.ms", "172800000", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
		if syn := configs["retention.ms"].Synonyms; len(syn) < 2 || syn[0].Key != "log.retention.hours" || syn[0].Value == nil || *syn[0].Value != "48" {
			t.Errorf("%s: retention.ms synonyms %+v", when, syn)
		}
		rcs, err := adm.DescribeBrokerConfigs(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rcs[0].Configs {
			switch c.Key {
			case "log.retention.hours":
				if c.MaybeValue() != "48" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
					t.Errorf("%s: broker %s = %q from %s", when, c.Key, c.MaybeValue(), c.Source)
				}
			}
		}
	}
	check("before restart")
	srv.restart()
	check("after restart")

	// AlterConfigs replaces the whole override set.
	if err := alterErr(adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: ptr("60000")}}, "configured")); err != nil {
		t.Fatal(err)
	}
	configs = describeTopic(t, adm, "configured")
	wantConfig(t, configs, "segment.ms", "60000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, configs, "retention.bytes", "-1", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, configs, "cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig)
	configured, _ := srv.Cluster.Topic("configured")
	if got := configured.Partition(1).Config().Log.SegmentAge; got != time.Minute {
		t.Errorf("live partition segment age %s, want 1m", got)
	}
}

// TestAlterConfigsErrors checks the per-resource errors and their
// messages.
func TestAlterConfigsErrors(t *testing.T) {
	srv := startServer(t, withCleaner(func(*cleaner.Config) {}))
	createTopic(t, srv.Addr, "errors", 1)
	adm := newAdmin(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tests := []struct {
		name    string
		alter   func() error
		want    *kerr.Error
		message string
	}{
		{"remote storage", func() error {
			return alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "remote.storage.enable", Value: ptr("true")}}, "errors"))
		}, kerr.InvalidConfig, "tiered storage"},
		{"bad value", func() error {
			return alterErr(adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: ptr("soon")}}, "errors"))
		}, kerr.InvalidConfig, "retention.ms"},
		{"unknown topic", func() error {
			return alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("1")}}, "missing"))
		}, kerr.UnknownTopicOrPartition, ""},
		{"read-only broker config", func() error {
			return alterErr(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.dirs", Value: ptr("/")}}, 0))
		}, kerr.InvalidConfig, "read-only"},
		{"subtract to empty", func() error {
			return alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: ptr("delete")}}, "errors"))
		}, kerr.InvalidConfig, "empty"},
		{"broker logger", func() error {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			r := kmsg.NewIncrementalAlterConfigsRequestResource()
			r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeBrokerLogger, "0"
			req.Resources = append(req.Resources, r)
			resp, err := req.RequestWith(ctx, newClient(t, srv.Addr))
			if err != nil {
				return err
			}
			res := resp.Resources[0]
			return errors.Join(kerr.ErrorForCode(res.ErrorCode), errors.New(*res.ErrorMessage))
		}, kerr.InvalidRequest, "BROKER_LOGGER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.alter()
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("err %v, want %v mentioning %q", err, tt.want, tt.message)
			}
		})
	}
	configs := describeTopic(t, adm, "errors")
	wantConfig(t, configs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, configs, "remote.storage.enable", "false", kmsg.ConfigSourceDefaultConfig)
}
