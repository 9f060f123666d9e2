package test

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// checkCommittedAtEnd fails unless group's committed offset of every
// partition of topic is the partition's end offset.
func checkCommittedAtEnd(tb testing.TB, addr, group, topic string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(tb, addr)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		tb.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		tb.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if got, ok := committed.Lookup(topic, o.Partition); !ok || got.Err != nil || got.At != o.Offset {
			tb.Errorf("group %s partition %d: committed %+v, want the end offset %d", group, o.Partition, got, o.Offset)
		}
	})
}

// planRows parses the reset-offsets plan table: partition → new offset.
func planRows(tb testing.TB, out, topic string) map[int32]int64 {
	tb.Helper()
	rows := map[int32]int64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != topic {
			continue
		}
		p, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			tb.Fatalf("bad plan row %q", line)
		}
		rows[int32(p)] = n
	}
	return rows
}

// TestGroupCLI drives `sluice group list|describe|reset-offsets` (the
// built binary) against a server: reset-offsets refuses while the group
// has members, prints a plan on --dry-run without committing, and
// --to-datetime moves the group to the first record at or after the time,
// where a consumer of the group then starts.
func TestGroupCLI(t *testing.T) {
	srv := startServer(t)
	const topic, group = "cli-reset", "cli-group"
	createTopic(t, srv.Addr, topic, 2)
	produced := makeRecords(topic, 1000) // timestamps baseTimestamp + i ms
	produceAll(t, newClient(t, srv.Addr), produced)
	sluice := func(args ...string) (string, error) {
		t.Helper()
		return runSluice(t, nil, append([]string{"group"}, append(args, "--bootstrap-server", srv.Addr)...)...)
	}

	// A member consumes everything and commits.
	w := newGroupWatch()
	m := startMember(t, srv.Addr, group, topic, "cli", w)
	w.waitFor(t, "every record consumed", func() bool { return len(w.processed) == len(produced) })
	if err := m.client.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}

	out, err := sluice("list")
	if err != nil || !strings.Contains(out, group) {
		t.Errorf("group list: %v\n%s", err, out)
	}
	out, err = sluice("describe", group)
	if err != nil || !strings.Contains(out, "Stable") || !strings.Contains(out, "sluice-e2e-cli") || !strings.Contains(out, topic) {
		t.Errorf("group describe: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		// TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG TIME-LAG
		if f := strings.Fields(line); len(f) == 6 && f[0] == topic && (f[4] != "0" || f[5] != "0s") {
			t.Errorf("describe: lag %s, time lag %s after committing everything: %q", f[4], f[5], line)
		}
	}

	target := baseTimestamp.Add(700 * time.Millisecond)
	reset := []string{"reset-offsets", group, "--topic", topic, "--to-datetime", target.UTC().Format(time.RFC3339Nano)}
	out, err = sluice(reset...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out, "active members") {
		t.Errorf("reset-offsets with an active member: %v, want exit code 1 naming active members\n%s", err, out)
	}
	m.stop()

	out, err = sluice(append(reset, "--dry-run")...)
	if err != nil || !strings.Contains(out, "dry run") {
		t.Fatalf("reset-offsets --dry-run: %v\n%s", err, out)
	}
	checkCommittedAtEnd(t, srv.Addr, group, topic)

	// The first record of each partition at or after the target time.
	want := map[int32]int64{}
	for p, records := range expectedByPartition(t, produced) {
		want[p] = int64(len(records))
		for _, r := range records {
			if !r.Timestamp.Before(target) {
				want[p] = r.Offset
				break
			}
		}
	}
	out, err = sluice(reset...)
	if err != nil {
		t.Fatalf("reset-offsets: %v\n%s", err, out)
	}
	if got := planRows(t, out, topic); len(got) != len(want) {
		t.Errorf("plan %v, want %v\n%s", got, want, out)
	} else {
		for p, o := range want {
			if got[p] != o {
				t.Errorf("plan moves partition %d to %d, want %d\n%s", p, got[p], o, out)
			}
		}
	}

	consumer := newClient(t, srv.Addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := consumeN(t, consumer, 300) // records 700..999
	first := map[int32]int64{}
	for _, r := range got {
		if _, ok := first[r.Partition]; !ok {
			first[r.Partition] = r.Offset
		}
		if r.Timestamp.Before(target) {
			t.Errorf("consumed partition %d offset %d at %s, before the reset time %s", r.Partition, r.Offset, r.Timestamp, target)
		}
	}
	for p, o := range want {
		if f, ok := first[p]; ok && f != o {
			t.Errorf("partition %d: consumption started at %d, want %d", p, f, o)
		}
	}

	// Offsets clamp to the log: --to-offset beyond the end is the end.
	consumer.Close() // leaves the group: resets are refused while it has members
	out, err = sluice("reset-offsets", group, "--topic", topic+":1", "--to-offset", "999999")
	if err != nil {
		t.Fatalf("reset-offsets --to-offset (group left): %v\n%s", err, out)
	}
	if rows := planRows(t, out, topic); len(rows) != 1 || rows[1] != int64(len(expectedByPartition(t, produced)[1])) {
		t.Errorf("--to-offset 999999 on partition 1: plan %v\n%s", rows, out)
	}
}

// TestKcatGroupConsumer consumes with kcat -G (a librdkafka balanced
// consumer), which commits on exit, and checks the committed offsets.
func TestKcatGroupConsumer(t *testing.T) {
	kcat := kcatPath(t)
	srv := startServer(t)
	const topic, group, n = "kcat-group", "kcat-consumers", 200
	createTopic(t, srv.Addr, topic, 2)
	produceAll(t, newClient(t, srv.Addr), makeRecords(topic, n))
	out := runKcat(t, kcat, "", "-b", srv.Addr, "-G", group, "-X", "auto.offset.reset=earliest",
		"-X", "session.timeout.ms=6000", "-c", strconv.Itoa(n), "-f", "%s\n", topic)
	if lines := strings.Count(out, "\n"); lines != n {
		t.Fatalf("kcat -G consumed %d records, want %d", lines, n)
	}
	checkCommittedAtEnd(t, srv.Addr, group, topic)
}

// confluentGroupScript subscribes a confluent-kafka-python consumer of
// group argv[3] to topic argv[2], polls argv[4] records, commits
// synchronously and prints how many it consumed.
const confluentGroupScript = `
import sys
from confluent_kafka import Consumer
addr, topic, group, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = Consumer({"bootstrap.servers": addr, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": 6000})
c.subscribe([topic])
got = 0
while got < n:
    m = c.poll(20)
    if m is None:
        sys.exit("timed out after %d records" % got)
    if m.error():
        sys.exit("consume error: %s" % m.error())
    got += 1
c.commit(asynchronous=False)
c.close()
print(got)
`

// TestConfluentGroupConsumer consumes with a confluent-kafka-python
// (librdkafka) group consumer that commits, and checks the committed
// offsets.
func TestConfluentGroupConsumer(t *testing.T) {
	python := pythonWith(t, "confluent_kafka", "python3-confluent-kafka")
	srv := startServer(t)
	const topic, group, n = "confluent-group", "confluent-consumers", 300
	createTopic(t, srv.Addr, topic, 3)
	produceAll(t, newClient(t, srv.Addr), makeRecords(topic, n))
	out := runPython(t, python, confluentGroupScript, srv.Addr, topic, group, strconv.Itoa(n))
	if strings.TrimSpace(out) != strconv.Itoa(n) {
		t.Fatalf("confluent consumer printed %q, want %d", out, n)
	}
	checkCommittedAtEnd(t, srv.Addr, group, topic)
}
