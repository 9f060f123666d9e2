package configs

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestApplyOps(t *testing.T) {
	str := func(s string) *string { return &s }
	isList := func(name string) bool { return name == "cleanup.policy" }
	current := func(name string) string {
		if name == "cleanup.policy" {
			return "delete"
		}
		return ""
	}
	tests := []struct {
		name    string
		start   map[string]string
		ops     []Op
		want    string // the resulting map as fmt prints it
		wantErr *kerr.Error
	}{
		{"set", nil, []Op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("5")}}, "map[retention.ms:5]", nil},
		{"delete", map[string]string{"retention.ms": "5", "segment.ms": "9"}, []Op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpDelete}}, "map[segment.ms:9]", nil},
		{"delete missing", nil, []Op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpDelete}}, "map[]", nil},
		{"append to inherited", nil, []Op{{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: str("compact")}}, "map[cleanup.policy:delete,compact]", nil},
		{"append present", map[string]string{"cleanup.policy": "compact"}, []Op{{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: str("compact")}}, "map[cleanup.policy:compact]", nil},
		{"subtract", map[string]string{"cleanup.policy": "compact,delete"}, []Op{{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpSubtract, Value: str("delete")}}, "map[cleanup.policy:compact]", nil},
		{"subtract to empty", nil, []Op{{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpSubtract, Value: str("delete")}}, "", kerr.InvalidConfig},
		{"append to a non-list", nil, []Op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpAppend, Value: str("5")}}, "", kerr.InvalidConfig},
		{"subtract from a non-list", nil, []Op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSubtract, Value: str("5")}}, "", kerr.InvalidConfig},
		{"set null", nil, []Op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet}}, "", kerr.InvalidRequest},
		{"duplicate", nil, []Op{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("5")}, {Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpDelete}}, "", kerr.InvalidRequest},
		{"unknown op", nil, []Op{{Name: "retention.ms", Op: 9, Value: str("5")}}, "", kerr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := map[string]string{}
			for k, v := range tt.start {
				start[k] = v
			}
			got, err := ApplyOps(start, tt.ops, current, isList)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := fmt.Sprint(got); s != tt.want { // fmt sorts map keys
				t.Fatalf("got %s, want %s", s, tt.want)
			}
		})
	}
}
