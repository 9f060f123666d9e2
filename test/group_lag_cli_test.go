package test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupLagCLI runs `sluice group lag` and `group describe` (the built
// binary) against a group that committed offset 4 of 10 records an hour
// old: lag 6 and the age of record 4 as time lag, in the table and in JSON;
// an unknown group exits 1.
func TestGroupLagCLI(t *testing.T) {
	srv := startServer(t)
	const topic, group = "cli-lag", "cli-lag-group"
	createTopic(t, srv.Addr, topic, 1)
	old := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var records []*kgo.Record
	for i := range 10 {
		records = append(records, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v%d", i), Timestamp: old.Add(time.Duration(i) * time.Second)})
	}
	produceAll(t, newClient(t, srv.Addr), records)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	offsets := make(kadm.Offsets)
	offsets.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4, LeaderEpoch: -1})
	if resp, err := newAdmin(t, srv.Addr).CommitOffsets(ctx, group, offsets); err != nil || resp.Error() != nil {
		t.Fatalf("commit offset 4: %v %v", err, resp.Error())
	}
	sluice := func(args ...string) (string, error) {
		t.Helper()
		return runSluice(t, nil, append([]string{"group"}, append(args, "--bootstrap-server", srv.Addr)...)...)
	}
	// The age of record 4 lies between these two, rounded to seconds.
	minAge := time.Since(old.Add(4*time.Second)) - time.Second

	before := time.Now()
	out, err := sluice("lag", group, "--format", "json")
	maxAge := time.Since(old.Add(4*time.Second)) + time.Second
	if err != nil {
		t.Fatalf("group lag --format json: %v\n%s", err, out)
	}
	var rows []struct {
		Group     string   `json:"group"`
		Topic     string   `json:"topic"`
		Partition int32    `json:"partition"`
		Committed *int64   `json:"committed_offset"`
		LogEnd    *int64   `json:"log_end_offset"`
		Lag       *int64   `json:"lag"`
		TimeLag   *float64 `json:"time_lag_seconds"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("group lag --format json is not JSON: %v\n%s", err, out)
	}
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1:\n%s", len(rows), out)
	}
	r := rows[0]
	if r.Group != group || r.Topic != topic || r.Committed == nil || *r.Committed != 4 || r.LogEnd == nil || *r.LogEnd != 10 || r.Lag == nil || *r.Lag != 6 {
		t.Fatalf("row %s, want committed 4, log end 10, lag 6", out)
	}
	if r.TimeLag == nil || *r.TimeLag < minAge.Seconds() || *r.TimeLag > maxAge.Seconds() {
		t.Fatalf("time lag %v s, want the age of record 4: %v to %v (asked at %s)\n%s", r.TimeLag, minAge.Seconds(), maxAge.Seconds(), before.Format(time.RFC3339), out)
	}

	// Every group, as a table.
	out, err = sluice("lag")
	if err != nil {
		t.Fatalf("group lag: %v\n%s", err, out)
	}
	found := false
	for _, line := range strings.Split(out, "\n") {
		// GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG TIME-LAG
		f := strings.Fields(line)
		if len(f) == 7 && f[0] == group {
			found = true
			age, err := time.ParseDuration(f[6])
			if f[3] != "4" || f[4] != "10" || f[5] != "6" || err != nil || age < minAge || age > time.Since(old.Add(4*time.Second))+time.Second {
				t.Errorf("lag row %q, want offsets 4 10 6 and the age of record 4 (about 59m56s)", line)
			}
		}
	}
	if !found || !strings.Contains(out, "TIME-LAG") {
		t.Errorf("group lag lacks a row of %s:\n%s", group, out)
	}

	out, err = sluice("describe", group)
	if err != nil || !strings.Contains(out, "TIME-LAG") {
		t.Errorf("group describe lacks the time lag: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		// TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG TIME-LAG
		if f := strings.Fields(line); len(f) == 6 && f[0] == topic {
			if age, err := time.ParseDuration(f[5]); f[4] != "6" || err != nil || age < minAge {
				t.Errorf("describe row %q, want lag 6 and the age of record 4", line)
			}
		}
	}

	out, err = sluice("lag", "no-such-group")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out, "not found") {
		t.Errorf("group lag of an unknown group: %v, want exit code 1 saying not found\n%s", err, out)
	}
	out, err = sluice("lag", "--format", "yaml")
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out, "--format") {
		t.Errorf("group lag --format yaml: %v, want exit code 2 (usage) naming --format\n%s", err, out)
	}
}

// TestGroupLagWatch runs `sluice group lag --watch` until it has printed
// the table twice, interrupts it and expects exit status 0.
func TestGroupLagWatch(t *testing.T) {
	srv := startServer(t)
	const topic, group = "cli-watch", "cli-watch-group"
	createTopic(t, srv.Addr, topic, 1)
	produceAll(t, newClient(t, srv.Addr), []*kgo.Record{{Topic: topic, Value: []byte("v")}})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	offsets := make(kadm.Offsets)
	offsets.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
	if resp, err := newAdmin(t, srv.Addr).CommitOffsets(ctx, group, offsets); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}

	cmd := exec.CommandContext(ctx, sluiceBinary(t), "group", "lag", group, "--watch", "100ms", "--bootstrap-server", srv.Addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rows := 0
	sc := bufio.NewScanner(stdout)
	for rows < 2 && sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 7 && f[0] == group && f[5] == "1" {
			rows++
		}
	}
	if rows < 2 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("--watch printed %d lag rows before its output ended, want 2\n%s", rows, stderr.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// Read to the end (the process exits on SIGINT; ctx bounds it), then
	// Wait, as exec requires.
	if _, err := io.Copy(io.Discard, stdout); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("group lag --watch after SIGINT: %v, want exit status 0\n%s", err, stderr.String())
	}
}
