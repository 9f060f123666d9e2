package test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestStartupLogSummary restarts a `sluice serve` process holding 200
// partitions and checks that its info log says so in one "cluster open"
// line (partitions, segments, bytes, took) and a bounded number of lines
// in all, none of them about one partition or topic: per-partition detail
// is debug, and topics that exist are not "created" again.
func TestStartupLogSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 200 partitions")
	}
	const topics, partitionsEach = 2, 100
	p := startProcess(t, onDiskTempDir(t), "--log-level", "info")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t, p.Addr)
	for i := range topics {
		name := "many-" + strconv.Itoa(i)
		if resp, err := adm.CreateTopic(ctx, partitionsEach, 1, nil, name); err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, resp.Err)
		}
	}
	adm.Close()
	if err := p.Terminate(); err != nil {
		t.Fatalf("first run did not stop cleanly: %v", err)
	}

	from := len(p.Output())
	p.Restart()
	eventually(t, "the restarted broker logs listening", func() bool {
		return strings.Contains(p.Output()[from:], "\tlistening\t")
	})
	if err := p.Terminate(); err != nil {
		t.Fatalf("second run did not stop cleanly: %v", err)
	}
	out := p.Output()[from:]

	var info []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "\tINFO\t") {
			info = append(info, line)
		}
	}
	var summaries []string
	for _, line := range info {
		if strings.Contains(line, "\tcluster open\t") {
			summaries = append(summaries, line)
		}
		if strings.Contains(line, `"partition": `) {
			t.Errorf("per-partition line at info: %s", line)
		}
		if strings.Contains(line, "\ttopic created\t") {
			t.Errorf("a restart logs an existing topic as created: %s", line)
		}
	}
	if len(summaries) != 1 {
		t.Fatalf("%d \"cluster open\" lines, want 1:\n%s", len(summaries), out)
	}
	// The topics' partitions and __consumer_offsets' (at least one).
	m := regexp.MustCompile(`"partitions": (\d+), "segments": (\d+), "bytes": (\d+), .*"took": "[^"]+"`).FindStringSubmatch(summaries[0])
	if m == nil {
		t.Fatalf("summary lacks partitions, segments, bytes and took: %s", summaries[0])
	}
	if n, _ := strconv.Atoi(m[1]); n <= topics*partitionsEach {
		t.Errorf("summary counts %d partitions, want more than %d: %s", n, topics*partitionsEach, summaries[0])
	}
	// Start-up and shutdown of 200 partitions in a few dozen lines: the
	// count must not grow with partitions.
	if len(info) > 60 {
		t.Errorf("%d info lines for a restart of %d partitions, want at most 60:\n%s", len(info), topics*partitionsEach, strings.Join(info, "\n"))
	}
}
