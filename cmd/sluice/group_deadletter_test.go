package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/consumergroup"
)

func TestDeadLetterSpecCheck(t *testing.T) {
	all := map[string]bool{"topic": true, "offset": true, "to": true}
	cases := []struct {
		name string
		spec deadLetterSpec
		want string // "" valid
	}{
		{"valid", deadLetterSpec{topic: "t:3", offset: 7, count: 2, to: "dlq", format: "table", set: all}, ""},
		{"no --to", deadLetterSpec{topic: "t:3", count: 1, format: "table", set: map[string]bool{"topic": true, "offset": true}}, "--to is required"},
		{"no --offset", deadLetterSpec{topic: "t:3", count: 1, to: "d", format: "table", set: map[string]bool{"topic": true, "to": true}}, "--offset is required"},
		{"whole topic", deadLetterSpec{topic: "t", count: 1, to: "d", format: "table", set: all}, "must name one partition"},
		{"two partitions", deadLetterSpec{topic: "t:1,2", count: 1, to: "d", format: "table", set: all}, "must name one partition"},
		{"negative offset", deadLetterSpec{topic: "t:0", offset: -1, count: 1, to: "d", format: "table", set: all}, "negative"},
		{"zero count", deadLetterSpec{topic: "t:0", count: 0, to: "d", format: "table", set: all}, "--count 0"},
		{"to itself", deadLetterSpec{topic: "t:0", count: 1, to: "t", format: "table", set: all}, "is the source topic"},
		{"bad format", deadLetterSpec{topic: "t:0", count: 1, to: "d", format: "xml", set: all}, "--format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic, p, err := tc.spec.check()
			if tc.want == "" {
				if err != nil || topic != "t" || p != 3 {
					t.Fatalf("check: %q %d %v, want t 3 nil", topic, p, err)
				}
				return
			}
			var exit *exitError
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &exit) || exit.code != exitUsage {
				t.Fatalf("check: %v, want a usage error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestDescribeStuckColumn(t *testing.T) {
	rows := []lagRow{{Topic: "a", Partition: 0}, {Topic: "a", Partition: 1}}
	stuck := []consumergroup.StuckPartition{{Group: "g", Topic: "a", Partition: 1, Reason: consumergroup.StuckTimeout, Since: 5}}
	var b strings.Builder
	if err := printDescribeTable(&b, describeRows(rows, stuck, nil)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "STUCK") || !strings.HasSuffix(lines[1], " no") || !strings.HasSuffix(lines[2], " yes(timeout)") {
		t.Fatalf("table:\n%s", b.String())
	}
	d := describeRows(rows, nil, errors.New("unreachable"))
	if d[0].Stuck != nil || d[1].Stuck != nil {
		t.Fatalf("rows with the stuck state unknown: %+v, want nil Stuck", d)
	}
	b.Reset()
	if err := printDescribeTable(&b, d); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.Split(strings.TrimSpace(b.String()), "\n")[1], " ?") {
		t.Fatalf("table with unknown state:\n%s", b.String())
	}
}
