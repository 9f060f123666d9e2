package test

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestShareGroupConfigs sets, reads and deletes GROUP resource configs
// (type 32) with IncrementalAlterConfigs and DescribeConfigs against a
// real server (whose group.share.record.lock.duration.ms is not Kafka's), checks that bad values are refused with INVALID_CONFIG,
// that the group's heartbeat interval reaches its members, and that the
// configs survive a restart.
func TestShareGroupConfigs(t *testing.T) {
	p := startProcess(t, t.TempDir(), "--group-share-record-lock-duration-ms", "20000")
	const group = "share-configs-workers"
	cl := newClient(t, p.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	alter := func(op kmsg.IncrementalAlterConfigOp, name string, value *string) (int16, string) {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = name, op, value
		r.Configs = append(r.Configs, c)
		req.Resources = append(req.Resources, r)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("IncrementalAlterConfigs: %v", err)
		}
		msg := ""
		if m := resp.Resources[0].ErrorMessage; m != nil {
			msg = *m
		}
		return resp.Resources[0].ErrorCode, msg
	}
	describe := func() map[string]kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
		req.Resources = append(req.Resources, r)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("DescribeConfigs: %v %v", err, resp)
		}
		out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, c := range resp.Resources[0].Configs {
			out[c.Name] = c
		}
		return out
	}
	value := func(c kmsg.DescribeConfigsResponseResourceConfig) string {
		if c.Value == nil {
			return "<null>"
		}
		return *c.Value
	}

	got := describe()
	// The broker's default, not Kafka's.
	if c := got["share.record.lock.duration.ms"]; value(c) != "20000" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Errorf("share.record.lock.duration.ms: %q source %v, want the broker's 20000 STATIC_BROKER_CONFIG", value(c), c.Source)
	}
	for name, want := range map[string]string{
		"share.delivery.count.limit": "5",
		"share.auto.offset.reset":    "latest", "share.isolation.level": "read_uncommitted",
		"share.session.timeout.ms": "45000", "share.heartbeat.interval.ms": "5000",
		"errors.deadletterqueue.topic.name": "", "errors.deadletterqueue.copy.record.enable": "false",
	} {
		if c, ok := got[name]; !ok || value(c) != want || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("default %s: %q source %v, want %q DEFAULT_CONFIG", name, value(c), c.Source, want)
		}
	}

	set := func(name, v string) {
		t.Helper()
		if code, msg := alter(kmsg.IncrementalAlterConfigOpSet, name, &v); code != 0 {
			t.Fatalf("set %s=%s: %v %s", name, v, kerr.ErrorForCode(code), msg)
		}
	}
	set("share.auto.offset.reset", "earliest")
	set("share.delivery.count.limit", "3")
	set("share.heartbeat.interval.ms", "6000")
	set("errors.deadletterqueue.topic.name", "dlq.orders")
	bad := "1"
	// KIP-1191: a dead-letter topic must carry the broker's
	// errors.deadletterqueue.topic.name.prefix (dlq. by default).
	unprefixed := "orders.dlq"
	if code, msg := alter(kmsg.IncrementalAlterConfigOpSet, "errors.deadletterqueue.topic.name", &unprefixed); code != kerr.InvalidConfig.Code || !strings.Contains(msg, `"dlq."`) {
		t.Errorf("dead-letter topic without the prefix: %v %q, want INVALID_CONFIG naming the prefix", kerr.ErrorForCode(code), msg)
	}
	if code, msg := alter(kmsg.IncrementalAlterConfigOpSet, "share.delivery.count.limit", &bad); code != kerr.InvalidConfig.Code || msg == "" {
		t.Errorf("delivery limit 1: %v %q, want INVALID_CONFIG with a message", kerr.ErrorForCode(code), msg)
	}
	if code, _ := alter(kmsg.IncrementalAlterConfigOpSet, "share.no.such.config", &bad); code != kerr.InvalidConfig.Code {
		t.Errorf("unknown config: %v, want INVALID_CONFIG", kerr.ErrorForCode(code))
	}
	if code, _ := alter(kmsg.IncrementalAlterConfigOpDelete, "errors.deadletterqueue.topic.name", nil); code != 0 {
		t.Errorf("delete: %v", kerr.ErrorForCode(code))
	}

	check := func(when string) {
		t.Helper()
		got := describe()
		for name, want := range map[string]string{
			"share.auto.offset.reset": "earliest", "share.delivery.count.limit": "3", "share.heartbeat.interval.ms": "6000",
		} {
			if c := got[name]; value(c) != want || c.Source != kmsg.ConfigSourceGroupConfig {
				t.Errorf("%s: %s = %q source %v, want %q GROUP_CONFIG", when, name, value(c), c.Source, want)
			}
		}
		if c := got["errors.deadletterqueue.topic.name"]; value(c) != "" || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("%s: deleted dead-letter topic is %q source %v", when, value(c), c.Source)
		}
	}
	check("after the changes")

	// The group's heartbeat interval reaches its members.
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.MemberEpoch, hb.SubscribedTopicNames = group, "member-1", 0, []string{"no-such-topic"}
	resp, err := hb.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 || resp.HeartbeatIntervalMillis != 6000 {
		t.Fatalf("heartbeat: %v %+v, want interval 6000", err, resp)
	}

	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	p.Restart()
	cl = newClient(t, p.Addr)
	check("after a restart")
}
