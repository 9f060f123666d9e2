package test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupJSONCLI checks `--format json` of `sluice group list`,
// `describe` and `reset-offsets` (the built binary), and that describing
// an unknown group exits 1.
func TestGroupJSONCLI(t *testing.T) {
	srv := startServer(t)
	const topic, group = "cli-group-json", "cli-group-json-g"
	createTopic(t, srv.Addr, topic, 2)
	var records []*kgo.Record
	for i := range 6 {
		records = append(records, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: fmt.Appendf(nil, "v%d", i)})
	}
	produceAll(t, newClient(t, srv.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner())), records)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	offsets := make(kadm.Offsets)
	offsets.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
	if resp, err := newAdmin(t, srv.Addr).CommitOffsets(ctx, group, offsets); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}

	var listed []struct {
		Group string `json:"group"`
		State string `json:"state"`
	}
	out := mustCLI(t, srv.Addr, "", "group", "list", "--format", "json")
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 || listed[0].Group != group || listed[0].State != "Empty" {
		t.Errorf("group list --format json: %v, want %s Empty:\n%s", err, group, out)
	}

	var described struct {
		Group      string `json:"group"`
		State      string `json:"state"`
		Members    []any  `json:"members"`
		Partitions []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Committed *int64 `json:"committed_offset"`
			LogEnd    *int64 `json:"log_end_offset"`
			Lag       *int64 `json:"lag"`
		} `json:"partitions"`
	}
	out = mustCLI(t, srv.Addr, "", "group", "describe", group, "--format", "json")
	if err := json.Unmarshal([]byte(out), &described); err != nil {
		t.Fatalf("group describe --format json: %v\n%s", err, out)
	}
	// Every partition of a topic the group committed on, as kadm's lag.
	if described.Group != group || described.State != "Empty" || described.Members == nil || len(described.Partitions) != 2 {
		t.Fatalf("group describe --format json: want %s, Empty, no members, two partitions:\n%s", group, out)
	}
	if p := described.Partitions[0]; p.Partition != 0 || p.Committed == nil || *p.Committed != 1 || *p.LogEnd != 3 || *p.Lag != 2 {
		t.Errorf("describe partition %+v, want partition 0 committed 1, end 3, lag 2", p)
	}
	if p := described.Partitions[1]; p.Partition != 1 || p.Committed != nil || *p.LogEnd != 3 {
		t.Errorf("describe partition %+v, want partition 1 with nothing committed, end 3", p)
	}
	wantExit(t, "describe an unknown group", runCLI(t, srv.Addr, "", "group", "describe", "no-such-group"), 1, "no-such-group", "not found")
	wantExit(t, "describe --format yaml", runCLI(t, srv.Addr, "", "group", "describe", group, "--format", "yaml"), 2, "--format")

	type plan struct {
		Committed  bool `json:"committed"`
		Partitions []struct {
			Partition int32  `json:"partition"`
			Current   *int64 `json:"current_offset"`
			New       int64  `json:"new_offset"`
		} `json:"partitions"`
	}
	for _, dry := range []bool{true, false} {
		args := []string{"group", "reset-offsets", group, "--topic", topic, "--to-latest", "--format", "json"}
		if dry {
			args = append(args, "--dry-run")
		}
		out = mustCLI(t, srv.Addr, "", args...)
		var p plan
		if err := json.Unmarshal([]byte(out), &p); err != nil || p.Committed == dry || len(p.Partitions) != 2 {
			t.Fatalf("reset-offsets --format json (dry run %t): %v, want committed %t and 2 partitions:\n%s", dry, err, !dry, out)
		}
		if p0, p1 := p.Partitions[0], p.Partitions[1]; p0.Current == nil || *p0.Current != 1 || p0.New != 3 || p1.Current != nil || p1.New != 3 {
			t.Errorf("plan %s, want partition 0 from 1 to 3 and partition 1 from nothing to 3", out)
		}
	}
	fetched, err := newAdmin(t, srv.Addr).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if o, ok := fetched.Lookup(topic, p); !ok || o.At != 3 {
			t.Errorf("partition %d committed %+v after reset-offsets --to-latest, want 3", p, o)
		}
	}
}
