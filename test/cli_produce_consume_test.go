package test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumedJSON is one line of `sluice consume --format json`.
type consumedJSON struct {
	Topic       string  `json:"topic"`
	Partition   int32   `json:"partition"`
	Offset      int64   `json:"offset"`
	Timestamp   int64   `json:"timestamp"`
	Key         *string `json:"key"`
	Value       *string `json:"value"`
	ValueBase64 bool    `json:"value_base64"`
	Headers     []struct {
		Key   string  `json:"key"`
		Value *string `json:"value"`
	} `json:"headers"`
}

// TestProduceConsumeCLI produces keyed records with headers with `sluice
// produce` (the built binary), reads them back with `sluice consume` in a
// kcat-style format and in JSON and checks the exact output; then start
// offsets, --num, a file as one record, every acks and compression, a
// group that commits what it printed, and the errors.
func TestProduceConsumeCLI(t *testing.T) {
	srv := startServer(t)
	const topic = "cli-pc"
	createTopic(t, srv.Addr, topic, 1)

	out := mustCLI(t, srv.Addr, "k1:v1\nk2:v:2\n", "produce", topic, "--key-separator", ":", "--header", "h1=a", "--header", "h2=")
	if row := tableRows(out)[topic]; strings.Join(row, " ") != topic+" 0 2 0 1" {
		t.Errorf("produce summary row %q, want %s 0 2 0 1:\n%s", row, topic, out)
	}
	before := time.Now().UnixMilli()
	out = mustCLI(t, srv.Addr, "v3", "produce", topic, "--format", "json") // no trailing newline, no key
	after := time.Now().UnixMilli()
	var summary struct {
		Records    int64 `json:"records"`
		Partitions []struct {
			FirstOffset int64 `json:"first_offset"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil || summary.Records != 1 || len(summary.Partitions) != 1 || summary.Partitions[0].FirstOffset != 2 {
		t.Errorf("produce --format json: %v, want 1 record at offset 2:\n%s", err, out)
	}

	want := "cli-pc 0 0 [k1] [v1] h1=a,h2= 2 2\n" +
		"cli-pc 0 1 [k2] [v:2] h1=a,h2= 2 3\n" +
		"cli-pc 0 2 [] [v3]  -1 2\n"
	if got := mustCLI(t, srv.Addr, "", "consume", topic, "--until-end", "--format", `%t %p %o [%k] [%s] %h %K %S\n`); got != want {
		t.Errorf("consume with a format string:\n%q\nwant\n%q", got, want)
	}

	out = mustCLI(t, srv.Addr, "", "consume", topic, "-e", "-f", "json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("consume --format json: %d lines, want 3:\n%s", len(lines), out)
	}
	for i, line := range lines {
		var r consumedJSON
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i, err, line)
		}
		wantKey := []string{"k1", "k2", ""}[i]
		wantValue := []string{"v1", "v:2", "v3"}[i]
		if r.Topic != topic || r.Partition != 0 || r.Offset != int64(i) || r.Value == nil || *r.Value != wantValue {
			t.Errorf("line %d: %s, want offset %d value %q", i, line, i, wantValue)
		}
		if (wantKey == "") != (r.Key == nil) || r.Key != nil && *r.Key != wantKey {
			t.Errorf("line %d: key %v, want %q (null when empty)", i, r.Key, wantKey)
		}
		if i < 2 && (len(r.Headers) != 2 || r.Headers[0].Key != "h1" || *r.Headers[0].Value != "a" || r.Headers[1].Key != "h2" || *r.Headers[1].Value != "") {
			t.Errorf("line %d: headers %s, want h1=a, h2=", i, line)
		}
		if i == 2 && (r.Timestamp < before || r.Timestamp > after || len(r.Headers) != 0) {
			t.Errorf("line 2: timestamp %d, want within [%d, %d], no headers: %s", r.Timestamp, before, after, line)
		}
	}
	if !strings.HasPrefix(lines[2], `{"topic":"cli-pc","partition":0,"offset":2,"timestamp":`) || !strings.HasSuffix(lines[2], `,"key":null,"value":"v3","headers":[]}`) {
		t.Errorf("JSON line 2 = %s, want exactly topic, partition, offset, timestamp, null key, value, empty headers", lines[2])
	}

	// Where to start, and --num.
	for _, tt := range []struct{ name, want string }{
		{"1", "v:2\nv3\n"},
		{"-1", "v3\n"},
		{"end", ""},
		{"beginning", "v1\nv:2\nv3\n"},
	} {
		if got := mustCLI(t, srv.Addr, "", "consume", topic, "-e", "--offset", tt.name); got != tt.want {
			t.Errorf("consume --offset %s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := mustCLI(t, srv.Addr, "", "consume", topic, "--num", "2", "-f", `%o\n`); got != "0\n1\n" {
		t.Errorf("consume --num 2: %q, want offsets 0 and 1", got)
	}

	// A file with newlines and bytes that are not UTF-8 is one record.
	file := filepath.Join(t.TempDir(), "blob")
	blob := []byte("line one\nline two\n\xff\xfe")
	if err := os.WriteFile(file, blob, 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, srv.Addr, "", "produce", topic, "--file", file, "--key", "blob")
	out = mustCLI(t, srv.Addr, "", "consume", topic, "-e", "--offset", "3", "-f", "json")
	var r consumedJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil || !r.ValueBase64 || r.Key == nil || *r.Key != "blob" {
		t.Fatalf("file record: %v, want key blob and a base64 value:\n%s", err, out)
	}
	if got, err := base64.StdEncoding.DecodeString(*r.Value); err != nil || string(got) != string(blob) {
		t.Errorf("file record value %q, want %q", got, blob)
	}

	// Every acks and compression choice writes records that read back.
	var wantValues []string
	for _, acks := range []string{"all", "1", "0"} {
		for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
			value := fmt.Sprintf("acks=%s codec=%s", acks, codec)
			wantValues = append(wantValues, value)
			mustCLI(t, srv.Addr, value+"\n", "produce", topic, "--acks", acks, "--compression", codec)
		}
	}
	// acks=0 is not acknowledged: wait until the last of them is stored.
	eventually(t, "the acks=0 records are stored", func() bool {
		d := describeTopicJSON(t, srv.Addr, topic)
		return d.Partitions[0].HighWater == int64(4+len(wantValues))
	})
	if got := mustCLI(t, srv.Addr, "", "consume", topic, "-e", "--offset", "4"); got != strings.Join(wantValues, "\n")+"\n" {
		t.Errorf("records of every acks and codec:\n%s\nwant\n%s", got, strings.Join(wantValues, "\n"))
	}

	// A group prints from its committed offset and commits what it printed.
	const group = "cli-pc-group"
	if got := mustCLI(t, srv.Addr, "", "consume", topic, "--group", group, "--num", "2", "-f", `%o\n`); got != "0\n1\n" {
		t.Errorf("first group run: %q, want offsets 0 and 1", got)
	}
	if got := mustCLI(t, srv.Addr, "", "consume", topic, "--group", group, "--until-end", "-f", `%o `); got != "2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 " {
		t.Errorf("second group run: %q, want offsets 2 to 18", got)
	}
	lag := mustCLI(t, srv.Addr, "", "group", "lag", group, "--format", "json")
	if !strings.Contains(lag, `"committed_offset": 19`) || !strings.Contains(lag, `"lag": 0`) {
		t.Errorf("group lag after consuming to the end: want committed 19, lag 0:\n%s", lag)
	}
	if got := mustCLI(t, srv.Addr, "", "consume", topic, "--group", group, "--until-end"); got != "" {
		t.Errorf("third group run printed %q, want nothing", got)
	}

	// Errors: refused operations exit 1 naming what is wrong, usage 2.
	wantExit(t, "produce to a missing topic", runCLI(t, srv.Addr, "x\n", "produce", "no-such-topic"), 1, "no-such-topic", "sluice topic create no-such-topic")
	wantExit(t, "produce to a missing partition", runCLI(t, srv.Addr, "x\n", "produce", topic, "--partition", "7"), 1, "not partition 7")
	wantExit(t, "a line without the key separator", runCLI(t, srv.Addr, "k:v\nnokey\n", "produce", topic, "-K", ":"), 1, "line 2", "key separator")
	wantExit(t, "consume a missing topic", runCLI(t, srv.Addr, "", "consume", "no-such-topic", "-e"), 1, "no-such-topic", "not found")
	wantExit(t, "consume past the end", runCLI(t, srv.Addr, "", "consume", topic, "--offset", "999"), 1, "--offset 999", "outside partition 0")
	wantExit(t, "--acks 2", runCLI(t, srv.Addr, "", "produce", topic, "--acks", "2"), 2, "--acks")
	wantExit(t, "--compression brotli", runCLI(t, srv.Addr, "", "produce", topic, "--compression", "brotli"), 2, "--compression")
	wantExit(t, "--key with --key-separator", runCLI(t, srv.Addr, "", "produce", topic, "-k", "a", "-K", ":"), 2, "--key")
	wantExit(t, "an unknown format token", runCLI(t, srv.Addr, "", "consume", topic, "-f", "%x"), 2, "%x")
	wantExit(t, "a bad --offset", runCLI(t, srv.Addr, "", "consume", topic, "--offset", "@yesterday"), 2, "RFC 3339")
	wantExit(t, "--group with --partition", runCLI(t, srv.Addr, "", "consume", topic, "-g", "g", "-p", "0"), 2, "--partition")

	// Piped, neither command writes a progress line (or anything else) on
	// stderr.
	for _, res := range []cliResult{
		runCLI(t, srv.Addr, "quiet\n", "produce", topic, "--partition", "0", "--format", "json"),
		runCLI(t, srv.Addr, "", "consume", topic, "--until-end", "--offset", "3"),
	} {
		if res.code != 0 || res.stderr != "" || res.stdout == "" {
			t.Errorf("piped: exit %d, stdout %q, stderr %q; want 0, output on stdout only", res.code, res.stdout, res.stderr)
		}
	}
}

// TestConsumeFromTimestampCLI starts `sluice consume` at a time: the first
// record at or after it, in RFC 3339 and in milliseconds; a time after
// every record prints nothing.
func TestConsumeFromTimestampCLI(t *testing.T) {
	srv := startServer(t)
	const topic = "cli-time"
	createTopic(t, srv.Addr, topic, 1)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	var records []*kgo.Record
	for i, v := range []string{"a", "b", "c"} {
		records = append(records, &kgo.Record{Topic: topic, Value: []byte(v), Timestamp: base.Add(time.Duration(i) * time.Hour)})
	}
	produceAll(t, newClient(t, srv.Addr), records)

	for _, tt := range []struct{ at, want string }{
		{"@" + base.Add(30*time.Minute).UTC().Format(time.RFC3339), "1 b\n2 c\n"},
		{"@" + base.Add(-time.Minute).Format(time.RFC3339), "0 a\n1 b\n2 c\n"},
		{fmt.Sprintf("@%d", base.Add(2*time.Hour).UnixMilli()), "2 c\n"},
		{"@" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339), ""},
	} {
		if got := mustCLI(t, srv.Addr, "", "consume", topic, "--until-end", "--offset", tt.at, "-f", `%o %s\n`); got != tt.want {
			t.Errorf("consume --offset %s: %q, want %q", tt.at, got, tt.want)
		}
	}
}

// TestConsumeFollowsCLI runs `sluice consume` without --num or
// --until-end: it prints a record produced while it runs, and exits 0 on
// SIGINT.
func TestConsumeFollowsCLI(t *testing.T) {
	srv := startServer(t)
	const topic = "cli-follow"
	createTopic(t, srv.Addr, topic, 1)
	produceAll(t, newClient(t, srv.Addr), []*kgo.Record{{Topic: topic, Value: []byte("before")}})

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBinary(t), "consume", topic, "--bootstrap-server", srv.Addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	next := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("consume ended early: %v\n%s", lines.Err(), stderr.String())
		}
		return lines.Text()
	}
	if got := next(); got != "before" {
		t.Fatalf("first line %q, want before", got)
	}
	produceAll(t, newClient(t, srv.Addr), []*kgo.Record{{Topic: topic, Value: []byte("while running")}})
	if got := next(); got != "while running" {
		t.Fatalf("second line %q, want the record produced while running", got)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("consume after SIGINT: %v, want exit 0\n%s", err, stderr.String())
	}
}

// TestProduceInterruptedCLI interrupts `sluice produce` while it waits on
// stdin: the lines read so far are written, the summary says so, and the
// exit status is 1 with "interrupted" on stderr.
func TestProduceInterruptedCLI(t *testing.T) {
	srv := startServer(t)
	const topic = "cli-interrupt"
	createTopic(t, srv.Addr, topic, 1)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBinary(t), "produce", topic, "--bootstrap-server", srv.Addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if _, err := stdin.Write([]byte("one\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	adm := newAdmin(t, srv.Addr)
	eventually(t, "both lines are stored", func() bool {
		ends, err := adm.ListEndOffsets(ctx, topic)
		o, ok := ends.Lookup(topic, 0)
		return err == nil && ok && o.Offset == 2
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("produce after SIGINT: %v, want exit 1 saying interrupted\nstderr: %s", err, stderr.String())
	}
	if row := tableRows(stdout.String())[topic]; strings.Join(row, " ") != topic+" 0 2 0 1" {
		t.Errorf("summary row %q, want the two records at offsets 0 and 1:\n%s", row, stdout.String())
	}
}
