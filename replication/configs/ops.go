package configs

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Op is one operation of IncrementalAlterConfigs on a config.
type Op struct {
	Name string
	// Op is SET (Value replaces the setting), DELETE (the setting is
	// removed and the inherited value applies), APPEND or SUBTRACT (Value,
	// a comma-separated list, is added to or removed from the current
	// list; only for list configs such as cleanup.policy).
	Op    kmsg.IncrementalAlterConfigOp
	Value *string
}

// ApplyOps returns configs with ops applied, modifying configs. current gives a
// config's value in force, inherited when not set in configs: APPEND and
// SUBTRACT start from it. isList tells list configs. Errors are
// kerr.InvalidRequest (duplicate names, unknown op, SET without a value)
// and kerr.InvalidConfig (APPEND or SUBTRACT on a config that is not a
// list).
func ApplyOps(configs map[string]string, ops []Op, current func(string) string, isList func(string) bool) (map[string]string, error) {
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if seen[op.Name] {
			return nil, fmt.Errorf("config %s appears twice; give each config once per resource: %w", op.Name, kerr.InvalidRequest)
		}
		seen[op.Name] = true
	}
	for _, op := range ops {
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, fmt.Errorf("SET of %s has no value; use DELETE to remove the setting: %w", op.Name, kerr.InvalidRequest)
			}
			configs[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(configs, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if !isList(op.Name) {
				return nil, fmt.Errorf("config %s is not a list; APPEND and SUBTRACT apply only to list configs such as cleanup.policy, use SET: %w", op.Name, kerr.InvalidConfig)
			}
			if op.Value == nil {
				return nil, fmt.Errorf("%s of %s has no value: %w", op.Op, op.Name, kerr.InvalidRequest)
			}
			list := splitList(current(op.Name))
			if v, ok := configs[op.Name]; ok {
				list = splitList(v)
			}
			if op.Op == kmsg.IncrementalAlterConfigOpAppend {
				for _, item := range splitList(*op.Value) {
					if !containsString(list, item) {
						list = append(list, item)
					}
				}
			} else {
				var kept []string
				remove := splitList(*op.Value)
				for _, item := range list {
					if !containsString(remove, item) {
						kept = append(kept, item)
					}
				}
				list = kept
				if len(list) == 0 {
					return nil, fmt.Errorf("SUBTRACT %q would leave %s empty; SET it to another value instead: %w", *op.Value, op.Name, kerr.InvalidConfig)
				}
			}
			configs[op.Name] = strings.Join(list, ",")
		default:
			return nil, fmt.Errorf("unknown operation %d on %s; use SET, DELETE, APPEND or SUBTRACT: %w", op.Op, op.Name, kerr.InvalidRequest)
		}
	}
	return configs, nil
}

func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
