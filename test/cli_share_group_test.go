package test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestShareGroupCLI drives `sluice share-group list|describe|reset-offsets
// |delete` (the built binary) against a real server with franz-go share
// consumers: the group is listed and described with its members'
// assignments, a reset is refused while it has members and then moves the
// start offsets (describe shows them and the lag), and delete removes it.
func TestShareGroupCLI(t *testing.T) {
	p := startProcess(t, t.TempDir(), "--group-share-heartbeat-interval-ms", "1000", "--group-share-session-timeout-ms", "6000")
	const topic, group = "cli-share", "cli-share-workers"
	createTopic(t, p.Addr, topic, 2)
	var records []*kgo.Record
	for i := range 10 {
		records = append(records, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: fmt.Appendf(nil, "v%d", i)})
	}
	produceAll(t, newClient(t, p.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner())), records)
	adm := newAdmin(t, p.Addr)
	stop := startShareConsumers(t, p.Addr, group, topic, 2)
	waitShareGroup(t, adm, group, "2 members with a partition each", func(g kadm.DescribedShareGroup) bool {
		if len(g.Members) != 2 {
			return false
		}
		for _, m := range g.Members {
			if len(m.Assignment[topic]) != 1 || m.MemberEpoch != g.GroupEpoch {
				return false
			}
		}
		return true
	})

	out := mustCLI(t, p.Addr, "", "share-group", "list")
	if rows := tableRows(out); len(rows[group]) != 2 || rows[group][1] != "Stable" {
		t.Errorf("share-group list: want %s Stable:\n%s", group, out)
	}
	out = mustCLI(t, p.Addr, "", "share-group", "describe", group)
	for _, want := range []string{"state:        Stable", "members:      2", "assignor:     simple", topic + ":0", topic + ":1", "START-OFFSET"} {
		if !strings.Contains(out, want) {
			t.Errorf("share-group describe does not show %q:\n%s", want, out)
		}
	}
	// Each assigned partition shows its log end, and either no start
	// offset yet (no lag) or the one its share-partition was initialized
	// at (the consumers start at the latest offset) and the lag it gives.
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != topic {
			continue
		}
		start, err := strconv.ParseInt(f[2], 10, 64)
		switch {
		case len(f) != 5 || f[3] != "5":
			t.Errorf("share-group describe partition row %v: want the log end offset 5\n%s", f, out)
		case f[2] == "-" && f[4] != "-":
			t.Errorf("share-group describe partition row %v: a lag without a start offset\n%s", f, out)
		case f[2] != "-" && (err != nil || start > 5 || f[4] != strconv.FormatInt(5-start, 10)):
			t.Errorf("share-group describe partition row %v: want a start offset up to 5 and the lag 5 minus it\n%s", f, out)
		}
	}

	wantExit(t, "reset-offsets with members", runCLI(t, p.Addr, "", "share-group", "reset-offsets", group, "--topic", topic, "--to-offset", "2"), 1, "stop its consumers")
	wantExit(t, "reset-offsets without a target", runCLI(t, p.Addr, "", "share-group", "reset-offsets", group, "--topic", topic), 2, "give exactly one")

	stop()
	waitShareGroup(t, adm, group, "empty", func(g kadm.DescribedShareGroup) bool { return len(g.Members) == 0 })
	out = mustCLI(t, p.Addr, "", "share-group", "reset-offsets", group, "--topic", topic, "--to-offset", "2")
	if rows := tableRows(out); !strings.Contains(out, "reset 2 start offsets") || len(rows[topic]) != 4 || rows[topic][3] != "2" {
		t.Errorf("share-group reset-offsets:\n%s", out)
	}
	var described struct {
		State      string `json:"state"`
		Partitions []struct {
			Partition   int32  `json:"partition"`
			StartOffset *int64 `json:"start_offset"`
			LogEnd      *int64 `json:"log_end_offset"`
			Lag         *int64 `json:"lag"`
		} `json:"partitions"`
	}
	out = mustCLI(t, p.Addr, "", "share-group", "describe", group, "--format", "json")
	if err := json.Unmarshal([]byte(out), &described); err != nil || described.State != "Empty" || len(described.Partitions) != 2 {
		t.Fatalf("share-group describe --format json: %v\n%s", err, out)
	}
	for _, r := range described.Partitions {
		if r.StartOffset == nil || *r.StartOffset != 2 || r.LogEnd == nil || *r.LogEnd != 5 || r.Lag == nil || *r.Lag != 3 {
			t.Errorf("partition %d after the reset: start %v end %v lag %v, want 2 5 3", r.Partition, r.StartOffset, r.LogEnd, r.Lag)
		}
	}
	out = mustCLI(t, p.Addr, "", "share-group", "reset-offsets", group, "--topic", topic+":1", "--to-earliest", "--dry-run")
	if !strings.Contains(out, "dry run") || tableRows(out)[topic][2] != "2" || tableRows(out)[topic][3] != "0" {
		t.Errorf("share-group reset-offsets --dry-run:\n%s", out)
	}

	// DeleteShareGroupOffsets (kadm) forgets the topic's states.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	deleted, err := adm.DeleteShareGroupOffsets(ctx, group, topic)
	if err != nil || deleted.Error() != nil {
		t.Fatalf("DeleteShareGroupOffsets: %v %v", err, deleted.Error())
	}
	offsets, err := adm.DescribeShareGroupOffsets(ctx, group)
	if err != nil || offsets[group].Err != nil || len(offsets[group].Offsets) != 0 {
		t.Errorf("share group offsets after DeleteShareGroupOffsets: %+v, %v; want none", offsets[group], err)
	}

	mustCLI(t, p.Addr, "", "share-group", "delete", group)
	if out := mustCLI(t, p.Addr, "", "share-group", "list"); strings.Contains(out, group) {
		t.Errorf("share-group list after delete:\n%s", out)
	}
	wantExit(t, "describe after delete", runCLI(t, p.Addr, "", "share-group", "describe", group), 1, "not found")
	wantExit(t, "delete of an unknown group", runCLI(t, p.Addr, "", "share-group", "delete", group), 1, "not found")
}
