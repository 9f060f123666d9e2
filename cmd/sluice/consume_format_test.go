package main

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCompileRecordFormat(t *testing.T) {
	rec := &kgo.Record{Topic: "t", Partition: 2, Offset: 42, Key: []byte("k"), Value: []byte("value"),
		Timestamp: time.UnixMilli(1714564800123), Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b"}}}
	null := &kgo.Record{Topic: "t"}
	tests := []struct {
		name, format string
		record       *kgo.Record
		want         string
	}{
		{"value and newline", `%s\n`, rec, "value\n"},
		{"every token", `%t %p %o %T %k %K %s %S %h`, rec, "t 2 42 1714564800123 k 1 value 5 a=1,b="},
		{"escapes and percent", `100%%\t\\\r`, rec, "100%\t\\\r"},
		{"null key and value", `[%k] %K [%s] %S [%h]`, null, "[] -1 [] -1 []"},
		{"literal only", "x", rec, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := compileRecordFormat(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f(nil, tt.record)); got != tt.want {
				t.Errorf("%q formats %q, want %q", tt.format, got, tt.want)
			}
		})
	}
	for _, bad := range []string{"%x", "%", `\`, `\q`} {
		_, err := compileRecordFormat(bad)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("%q: %v, want a usage error", bad, err)
		}
	}
}

func TestParseStart(t *testing.T) {
	tests := []struct {
		in   string
		want startSpec
	}{
		{"beginning", startSpec{kind: startBeginning}},
		{"start", startSpec{kind: startBeginning}},
		{"end", startSpec{kind: startEnd}},
		{"17", startSpec{kind: startExact, n: 17}},
		{"0", startSpec{kind: startExact}},
		{"-5", startSpec{kind: startFromEnd, n: 5}},
		{"@1714564800000", startSpec{kind: startTime, ms: 1714564800000}},
		{"@2024-05-01T12:00:00Z", startSpec{kind: startTime, ms: 1714564800000}},
		{"@2024-05-01T14:00:00+02:00", startSpec{kind: startTime, ms: 1714564800000}},
	}
	for _, tt := range tests {
		got, err := parseStart(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseStart(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "latest", "@", "@yesterday", "1.5"} {
		var ee *exitError
		if _, err := parseStart(bad); !errors.As(err, &ee) || ee.code != exitUsage {
			t.Errorf("parseStart(%q): %v, want a usage error", bad, err)
		}
	}
}
