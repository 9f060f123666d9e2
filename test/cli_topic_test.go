package test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// topicJSON is one topic of `sluice topic describe --format json`.
type topicJSON struct {
	Topic       string `json:"topic"`
	ID          string `json:"id"`
	Internal    bool   `json:"internal"`
	Replication int    `json:"replication_factor"`
	Configs     []struct {
		Name   string  `json:"name"`
		Value  *string `json:"value"`
		Source string  `json:"source"`
	} `json:"configs"`
	Partitions []struct {
		Partition int32   `json:"partition"`
		Leader    int32   `json:"leader"`
		Replicas  []int32 `json:"replicas"`
		ISR       []int32 `json:"isr"`
		LogStart  int64   `json:"log_start_offset"`
		HighWater int64   `json:"high_watermark"`
	} `json:"partitions"`
}

// describeTopicJSON runs `topic describe --format json` on one topic.
func describeTopicJSON(t *testing.T, addr, topic string) topicJSON {
	t.Helper()
	out := mustCLI(t, addr, "", "topic", "describe", topic, "--format", "json")
	var ts []topicJSON
	if err := json.Unmarshal([]byte(out), &ts); err != nil || len(ts) != 1 {
		t.Fatalf("topic describe --format json: %v, want one topic:\n%s", err, out)
	}
	return ts[0]
}

// configValue returns the value of config name in d and whether d lists
// it.
func configValue(d topicJSON, name string) (string, bool) {
	for _, c := range d.Configs {
		if c.Name == name && c.Value != nil {
			return *c.Value, true
		}
	}
	return "", false
}

// TestTopicCLI runs every `sluice topic` verb (the built binary) against
// a broker and checks their tables, JSON and exit statuses: 1 for a
// refused operation naming the topic, 2 for a usage error.
func TestTopicCLI(t *testing.T) {
	srv := startServer(t)
	const topic = "cli-topic"

	// create
	out := mustCLI(t, srv.Addr, "", "topic", "create", topic, "-p", "3", "-c", "retention.ms=3600000")
	if row := tableRows(out)[topic]; !slices.Equal(row, []string{topic, "OK"}) {
		t.Errorf("create: row %q, want %s OK:\n%s", row, topic, out)
	}
	res := runCLI(t, srv.Addr, "", "topic", "create", topic)
	wantExit(t, "create an existing topic", res, 1, topic, "TOPIC_ALREADY_EXISTS", "sluice topic delete "+topic)
	mustCLI(t, srv.Addr, "", "topic", "create", topic, "--if-not-exists")
	wantExit(t, "create with -p 0", runCLI(t, srv.Addr, "", "topic", "create", "other", "-p", "0"), 2, "--partitions")
	wantExit(t, "create with a config lacking =", runCLI(t, srv.Addr, "", "topic", "create", "other", "-c", "retention.ms"), 2, "name=value")
	wantExit(t, "create without a topic", runCLI(t, srv.Addr, "", "topic", "create"), 2, "requires at least 1 arg")

	// list
	out = mustCLI(t, srv.Addr, "", "topic", "list")
	rows := tableRows(out)
	if !slices.Equal(rows[topic], []string{topic, "3", "1"}) || !slices.Equal(rows["TOPIC"], []string{"TOPIC", "PARTITIONS", "REPLICATION-FACTOR"}) {
		t.Errorf("list: want header and %s 3 1:\n%s", topic, out)
	}
	if _, ok := rows["__consumer_offsets"]; ok {
		t.Errorf("list shows an internal topic without --internal:\n%s", out)
	}
	out = mustCLI(t, srv.Addr, "", "topic", "list", "--internal", "--format", "json")
	var listed []struct {
		Topic      string `json:"topic"`
		Partitions int    `json:"partitions"`
		Internal   bool   `json:"internal"`
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("list --format json: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, l := range listed {
		names[l.Topic] = true
		if l.Topic == topic && (l.Partitions != 3 || l.Internal) {
			t.Errorf("list json: %+v, want 3 partitions, not internal", l)
		}
	}
	if !names[topic] || !names["__consumer_offsets"] {
		t.Errorf("list --internal lacks %s or __consumer_offsets: %v", topic, names)
	}

	// describe, after two records to partition 1
	mustCLI(t, srv.Addr, "a\nb\n", "produce", topic, "--partition", "1")
	out = mustCLI(t, srv.Addr, "", "topic", "describe", topic)
	rows = tableRows(out)
	if !slices.Equal(rows["retention.ms"], []string{"retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG"}) {
		t.Errorf("describe: config row %q, want retention.ms 3600000 DYNAMIC_TOPIC_CONFIG:\n%s", rows["retention.ms"], out)
	}
	// PARTITION LEADER EPOCH REPLICAS ISR LOG-START-OFFSET HIGH-WATERMARK
	for p, hwm := range []string{"0", "2", "0"} {
		row := rows[string(rune('0'+p))]
		if len(row) != 7 || row[1] != "1" || row[3] != "1" || row[4] != "1" || row[5] != "0" || row[6] != hwm {
			t.Errorf("describe: partition %d row %q, want leader 1, replicas and ISR 1, offsets 0 to %s:\n%s", p, row, hwm, out)
		}
	}
	d := describeTopicJSON(t, srv.Addr, topic)
	if d.Topic != topic || d.ID == "" || d.Replication != 1 || len(d.Partitions) != 3 || d.Partitions[1].HighWater != 2 {
		t.Errorf("describe json: %+v, want 3 partitions, high watermark 2 on partition 1", d)
	}
	res = runCLI(t, srv.Addr, "", "topic", "describe", "no-such-topic")
	wantExit(t, "describe a missing topic", res, 1, "no-such-topic", "not found", "sluice topic list")

	// alter-config
	out = mustCLI(t, srv.Addr, "", "topic", "alter-config", topic, "--set", "retention.ms=1000", "--set", "cleanup.policy=compact")
	if row := tableRows(out)[topic]; !slices.Equal(row, []string{topic, "OK"}) {
		t.Errorf("alter-config: row %q, want OK:\n%s", row, out)
	}
	d = describeTopicJSON(t, srv.Addr, topic)
	if v, _ := configValue(d, "retention.ms"); v != "1000" {
		t.Errorf("retention.ms = %q after alter-config, want 1000", v)
	}
	if v, _ := configValue(d, "cleanup.policy"); v != "compact" {
		t.Errorf("cleanup.policy = %q after alter-config, want compact", v)
	}
	mustCLI(t, srv.Addr, "", "topic", "alter-config", topic, "--delete", "retention.ms")
	d = describeTopicJSON(t, srv.Addr, topic)
	if v, ok := configValue(d, "retention.ms"); ok {
		t.Errorf("retention.ms still shown (%q) after --delete", v)
	}
	if v, _ := configValue(d, "cleanup.policy"); v != "compact" {
		t.Errorf("cleanup.policy = %q after deleting retention.ms, want compact kept", v)
	}
	mustCLI(t, srv.Addr, "", "topic", "alter-config", topic, "--set", "retention.ms=5", "--dry-run")
	if v, ok := configValue(describeTopicJSON(t, srv.Addr, topic), "retention.ms"); ok {
		t.Errorf("--dry-run applied retention.ms=%s", v)
	}
	res = runCLI(t, srv.Addr, "", "topic", "alter-config", topic, "--set", "no.such.config=1")
	wantExit(t, "alter an unknown config", res, 1, "INVALID_CONFIG", "no.such.config")
	wantExit(t, "alter-config with nothing to change", runCLI(t, srv.Addr, "", "topic", "alter-config", topic), 2, "--set")
	res = runCLI(t, srv.Addr, "", "topic", "alter-config", "no-such-topic", "--set", "retention.ms=1")
	wantExit(t, "alter a missing topic", res, 1, "no-such-topic")

	// add-partitions
	mustCLI(t, srv.Addr, "", "topic", "add-partitions", topic, "--num", "2")
	if n := len(describeTopicJSON(t, srv.Addr, topic).Partitions); n != 5 {
		t.Errorf("%d partitions after adding 2 to 3, want 5", n)
	}
	mustCLI(t, srv.Addr, "", "topic", "add-partitions", topic, "--total", "6")
	if n := len(describeTopicJSON(t, srv.Addr, topic).Partitions); n != 6 {
		t.Errorf("%d partitions after --total 6, want 6", n)
	}
	res = runCLI(t, srv.Addr, "", "topic", "add-partitions", topic, "--total", "2")
	wantExit(t, "shrink with --total", res, 1, topic, "INVALID_PARTITIONS")
	wantExit(t, "add-partitions with --num and --total", runCLI(t, srv.Addr, "", "topic", "add-partitions", topic, "--num", "1", "--total", "9"), 2, "exactly one")

	// delete
	out = mustCLI(t, srv.Addr, "", "topic", "delete", topic, "--format", "json")
	var deleted []struct {
		Topic string `json:"topic"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &deleted); err != nil || len(deleted) != 1 || deleted[0].Topic != topic || deleted[0].Error != "" {
		t.Errorf("delete --format json: %v, want one success:\n%s", err, out)
	}
	if out := mustCLI(t, srv.Addr, "", "topic", "list"); strings.Contains(out, topic) {
		t.Errorf("list after delete still shows %s:\n%s", topic, out)
	}
	res = runCLI(t, srv.Addr, "", "topic", "delete", topic)
	wantExit(t, "delete a deleted topic", res, 1, topic, "UNKNOWN_TOPIC_OR_PARTITION")

	wantExit(t, "unknown verb", runCLI(t, srv.Addr, "", "topic", "frobnicate"), 2, "unknown command", "frobnicate")
	wantExit(t, "unknown flag", runCLI(t, srv.Addr, "", "topic", "list", "--frobnicate"), 2, "unknown flag")
	wantExit(t, "bad --format", runCLI(t, srv.Addr, "", "topic", "list", "--format", "yaml"), 2, "--format")
	wantExit(t, "unreachable broker", runCLI(t, freeAddr(t), "", "topic", "list"), 1, "cannot reach", "--bootstrap-server")
}
