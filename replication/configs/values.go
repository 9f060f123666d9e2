package configs

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/partition"
)

// Parsing and formatting of config values, and the validators the tables
// use. A validator's error says what is wrong and how to fix it; the
// parsers assume a validated value.

func mustInt(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n
}

// millis parses a validated millisecond count; -1 stays -1ms (forever) and
// values beyond time.Duration saturate.
func millis(v string) time.Duration {
	n := mustInt(v)
	if n > maxMillis {
		return math.MaxInt64
	}
	return time.Duration(n) * time.Millisecond
}

// formatMillis formats a duration in milliseconds; the saturated
// math.MaxInt64 is Kafka's Long.MAX_VALUE.
func formatMillis(d time.Duration) string {
	if d == math.MaxInt64 {
		return strconv.FormatInt(math.MaxInt64, 10)
	}
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// parsePolicy turns a validated cleanup.policy list into bits.
func parsePolicy(v string) partition.CleanupPolicy {
	var p partition.CleanupPolicy
	for _, part := range strings.Split(v, ",") {
		switch strings.TrimSpace(part) {
		case "delete":
			p |= partition.CleanupDelete
		case "compact":
			p |= partition.CleanupCompact
		}
	}
	return p
}

// formatPolicy is parsePolicy's inverse, in Kafka's spelling.
func formatPolicy(p partition.CleanupPolicy) string {
	switch p {
	case partition.CleanupCompact:
		return "compact"
	case partition.CleanupCompact | partition.CleanupDelete:
		return "compact,delete"
	default:
		return "delete"
	}
}

func validatePolicy(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("must name delete, compact or both (compact,delete)")
	}
	return listOf("delete", "compact")(v)
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer; give a whole number between %d and %d", lo, hi)
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		return nil
	}
}

func floatRange(lo, hi float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("not a number; give a number between %g and %g", lo, hi)
		}
		if f < lo || f > hi {
			return fmt.Errorf("must be between %g and %g", lo, hi)
		}
		return nil
	}
}

func boolean(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "false":
		return nil
	}
	return fmt.Errorf("must be true or false")
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

func listOf(allowed ...string) func(string) error {
	one := oneOf(allowed...)
	return func(v string) error {
		parts := strings.Split(v, ",")
		for _, p := range parts {
			if err := one(strings.TrimSpace(p)); err != nil {
				return fmt.Errorf("%q: %w", p, err)
			}
		}
		return nil
	}
}
