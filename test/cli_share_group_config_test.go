package test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestShareGroupConfigCLI drives `sluice share-group config` and
// `alter-config` (the built binary) against a real server whose
// group.share.record.lock.duration.ms is not Kafka's: configs are shown
// with their sources, set, validated without being applied (--dry-run),
// refused with the broker's message (a dead-letter topic without the
// dlq. prefix), and deleted back to the default; the changes are checked
// with a DescribeConfigs of our own.
func TestShareGroupConfigCLI(t *testing.T) {
	p := startProcess(t, t.TempDir(), "--group-share-record-lock-duration-ms", "20000")
	const group = "cli-share-config"

	type configsJSON struct {
		Group   string `json:"group"`
		Configs []struct {
			Name   string  `json:"name"`
			Value  *string `json:"value"`
			Source string  `json:"source"`
		} `json:"configs"`
	}
	configs := func(args ...string) map[string][2]string {
		t.Helper()
		var got configsJSON
		out := mustCLI(t, p.Addr, "", append([]string{"share-group", "config", group, "--format", "json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &got); err != nil || got.Group != group {
			t.Fatalf("share-group config --format json: %v\n%s", err, out)
		}
		m := map[string][2]string{}
		for _, c := range got.Configs {
			v := "<null>"
			if c.Value != nil {
				v = *c.Value
			}
			m[c.Name] = [2]string{v, c.Source}
		}
		return m
	}
	// The broker's own value of a group config, by a DescribeConfigs of
	// the test's, not the CLI's.
	cl := newClient(t, p.Addr)
	brokerValue := func(name string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		req := kmsg.NewPtrDescribeConfigsRequest()
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeGroupConfig, group, []string{name}
		req.Resources = append(req.Resources, r)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Resources) != 1 || len(resp.Resources[0].Configs) != 1 || resp.Resources[0].Configs[0].Value == nil {
			t.Fatalf("DescribeConfigs %s: %v %+v", name, err, resp)
		}
		return *resp.Resources[0].Configs[0].Value
	}

	// A group with no members and no settings: only the broker's
	// non-default lock duration shows, every config with --all-configs.
	got := configs()
	if len(got) != 1 || got["share.record.lock.duration.ms"] != [2]string{"20000", "STATIC_BROKER_CONFIG"} {
		t.Errorf("config of an unset group: %v, want only share.record.lock.duration.ms 20000 STATIC_BROKER_CONFIG", got)
	}
	if all := configs("--all-configs"); all["share.delivery.count.limit"] != [2]string{"5", "DEFAULT_CONFIG"} || len(all) < 8 {
		t.Errorf("config --all-configs: %v, want every group config with share.delivery.count.limit 5 DEFAULT_CONFIG", all)
	}
	out := mustCLI(t, p.Addr, "", "share-group", "config", group)
	if row := tableRows(out)["share.record.lock.duration.ms"]; len(row) != 3 || row[1] != "20000" || row[2] != "STATIC_BROKER_CONFIG" {
		t.Errorf("share-group config table: row %v\n%s", row, out)
	}

	out = mustCLI(t, p.Addr, "", "share-group", "alter-config", group,
		"--set", "share.delivery.count.limit=3", "--set", "errors.deadletterqueue.topic.name=dlq.orders")
	if row := tableRows(out)[group]; len(row) != 2 || row[1] != "OK" {
		t.Errorf("share-group alter-config: row %v\n%s", row, out)
	}
	if v := brokerValue("share.delivery.count.limit"); v != "3" {
		t.Errorf("after alter-config the broker has share.delivery.count.limit %s, want 3", v)
	}
	got = configs()
	if got["share.delivery.count.limit"] != [2]string{"3", "GROUP_CONFIG"} || got["errors.deadletterqueue.topic.name"] != [2]string{"dlq.orders", "GROUP_CONFIG"} {
		t.Errorf("config after alter-config: %v", got)
	}

	mustCLI(t, p.Addr, "", "share-group", "alter-config", group, "--set", "share.delivery.count.limit=4", "--dry-run")
	if v := brokerValue("share.delivery.count.limit"); v != "3" {
		t.Errorf("after alter-config --dry-run the broker has share.delivery.count.limit %s, want 3 still", v)
	}
	wantExit(t, "a dead-letter topic without the prefix", runCLI(t, p.Addr, "", "share-group", "alter-config", group,
		"--set", "errors.deadletterqueue.topic.name=orders.dlq"), 1, "INVALID_CONFIG", `"dlq."`)
	wantExit(t, "a delivery limit out of range", runCLI(t, p.Addr, "", "share-group", "alter-config", group,
		"--set", "share.delivery.count.limit=50", "--format", "json"), 1, "share.delivery.count.limit")
	if v := brokerValue("errors.deadletterqueue.topic.name"); v != "dlq.orders" {
		t.Errorf("after refused changes the dead-letter topic is %q, want dlq.orders", v)
	}
	wantExit(t, "alter-config with nothing to change", runCLI(t, p.Addr, "", "share-group", "alter-config", group), 2, "nothing to change")
	wantExit(t, "alter-config set and delete of one config", runCLI(t, p.Addr, "", "share-group", "alter-config", group,
		"--set", "share.delivery.count.limit=3", "--delete", "share.delivery.count.limit"), 2, "both set and deleted")

	mustCLI(t, p.Addr, "", "share-group", "alter-config", group, "--delete", "share.delivery.count.limit")
	if v := brokerValue("share.delivery.count.limit"); v != "5" {
		t.Errorf("after --delete the broker has share.delivery.count.limit %s, want the default 5", v)
	}
	if got := configs(); len(got) != 2 || got["errors.deadletterqueue.topic.name"][0] != "dlq.orders" {
		t.Errorf("config after --delete: %v, want the lock duration and the dead-letter topic", got)
	}
}
