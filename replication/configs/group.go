package configs

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupConfig describes one config of the GROUP resource (KIP-848,
// KIP-932, KIP-1191): a group's own setting over the broker's default.
type groupConfig struct {
	name string
	// brokerName is the broker-level default's name, reported as the
	// synonym of a group without the setting.
	brokerName   string
	typ          kmsg.ConfigType
	doc          string
	kafkaDefault string
	// validate parses a value; the error says what is wrong and how to fix
	// it.
	validate func(string) error
	// apply sets a validated value on a resolved share group config.
	apply func(*ShareGroup, string)
	// value formats the setting of a resolved config ("" when it is
	// unset: kafkaDefault).
	value func(ShareGroup) string
}

// formatOptionalMillis formats a duration in milliseconds, "" for 0.
func formatOptionalMillis(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// Bounds of the share group timeouts, Kafka's defaults of the broker
// configs group.share.{min,max}.{session.timeout,heartbeat.interval,
// record.lock.duration}.ms and group.share.{min,max}.delivery.count.limit
// (fixed in Sluice).
const (
	minShareSessionTimeoutMs     = 45000
	maxShareSessionTimeoutMs     = 60000
	minShareHeartbeatIntervalMs  = 5000
	maxShareHeartbeatIntervalMs  = 15000
	minShareRecordLockDurationMs = 15000
	maxShareRecordLockDurationMs = 60000
	minShareDeliveryCountLimit   = 2
	maxShareDeliveryCountLimit   = 10
)

// groupConfigs is every GROUP config Sluice accepts, sorted by name.
var groupConfigs = []groupConfig{
	{
		name: "errors.deadletterqueue.copy.record.enable", brokerName: "errors.deadletterqueue.copy.record.enable", typ: kmsg.ConfigTypeBoolean,
		doc:          "Copy a dead-lettered record's key, value and headers into the dead letter; otherwise it carries only the headers naming where it came from (KIP-1191).",
		kafkaDefault: "false",
		validate:     boolean,
		apply: func(c *ShareGroup, v string) {
			c.DeadLetterCopyRecord = strings.EqualFold(strings.TrimSpace(v), "true")
		},
		value: func(c ShareGroup) string { return strconv.FormatBool(c.DeadLetterCopyRecord) },
	},
	{
		name: "errors.deadletterqueue.topic.name", brokerName: "errors.deadletterqueue.topic.name", typ: kmsg.ConfigTypeString,
		doc: "Topic that share group records are written to when rejected or delivered share.delivery.count.limit times " +
			"(KIP-1191); empty archives them.",
		kafkaDefault: "",
		validate:     deadLetterTopic,
		apply:        func(c *ShareGroup, v string) { c.DeadLetterTopic = strings.TrimSpace(v) },
		value:        func(c ShareGroup) string { return c.DeadLetterTopic },
	},
	{
		name: "share.auto.offset.reset", brokerName: "share.auto.offset.reset", typ: kmsg.ConfigTypeString,
		doc: "Where a share group starts reading a partition it has no state for: latest, earliest, " +
			"or by_duration:<ISO-8601 duration> (records no older than the duration, KIP-1106).",
		kafkaDefault: "latest",
		validate: func(v string) error {
			_, _, err := parseAutoOffsetReset(v)
			return err
		},
		apply: func(c *ShareGroup, v string) {
			c.AutoOffsetReset, c.ResetDuration, _ = parseAutoOffsetReset(v)
		},
		value: func(c ShareGroup) string { return c.AutoOffsetReset },
	},
	{
		name: "share.delivery.count.limit", brokerName: "group.share.delivery.count.limit", typ: kmsg.ConfigTypeInt,
		doc:          "Deliveries after which a record not accepted is archived, or written to the dead-letter topic.",
		kafkaDefault: "5",
		validate:     intRange(minShareDeliveryCountLimit, maxShareDeliveryCountLimit),
		apply:        func(c *ShareGroup, v string) { c.DeliveryCountLimit = int(mustInt(v)) },
		value:        func(c ShareGroup) string { return strconv.Itoa(c.DeliveryCountLimit) },
	},
	{
		name: "share.heartbeat.interval.ms", brokerName: "group.share.heartbeat.interval.ms", typ: kmsg.ConfigTypeInt,
		doc:          "Heartbeat interval in milliseconds told to the share group's members.",
		kafkaDefault: "5000",
		validate:     intRange(minShareHeartbeatIntervalMs, maxShareHeartbeatIntervalMs),
		apply:        func(c *ShareGroup, v string) { c.HeartbeatInterval = millis(v) },
		value:        func(c ShareGroup) string { return formatOptionalMillis(c.HeartbeatInterval) },
	},
	{
		name: "share.isolation.level", brokerName: "share.isolation.level", typ: kmsg.ConfigTypeString,
		doc:          "read_committed delivers only committed transactional records; read_uncommitted delivers every record.",
		kafkaDefault: "read_uncommitted",
		validate:     oneOf("read_uncommitted", "read_committed"),
		apply: func(c *ShareGroup, v string) {
			c.ReadCommitted = strings.TrimSpace(v) == "read_committed"
		},
		value: func(c ShareGroup) string {
			if c.ReadCommitted {
				return "read_committed"
			}
			return "read_uncommitted"
		},
	},
	{
		name: "share.record.lock.duration.ms", brokerName: "group.share.record.lock.duration.ms", typ: kmsg.ConfigTypeInt,
		doc:          "Milliseconds an acquired record stays locked to its consumer before it is available again.",
		kafkaDefault: "30000",
		validate:     intRange(minShareRecordLockDurationMs, maxShareRecordLockDurationMs),
		apply:        func(c *ShareGroup, v string) { c.RecordLockDuration = millis(v) },
		value:        func(c ShareGroup) string { return formatOptionalMillis(c.RecordLockDuration) },
	},
	{
		name: "share.session.timeout.ms", brokerName: "group.share.session.timeout.ms", typ: kmsg.ConfigTypeInt,
		doc:          "Milliseconds a share group member may go without a heartbeat before it is removed.",
		kafkaDefault: "45000",
		validate:     intRange(minShareSessionTimeoutMs, maxShareSessionTimeoutMs),
		apply:        func(c *ShareGroup, v string) { c.SessionTimeout = millis(v) },
		value:        func(c ShareGroup) string { return formatOptionalMillis(c.SessionTimeout) },
	},
}

// findGroupConfig returns the definition of a group config name.
func findGroupConfig(name string) (groupConfig, bool) {
	for _, gc := range groupConfigs {
		if gc.name == name {
			return gc, true
		}
	}
	return groupConfig{}, false
}

// IsGroupList reports a group config whose value is a list (APPEND and
// SUBTRACT apply to it): none is.
func IsGroupList(name string) bool { return false }

// ValidateGroup checks a group's config overrides, alone and together
// (share.heartbeat.interval.ms below share.session.timeout.ms); the
// error is an INVALID_CONFIG naming the config and the fix.
func ValidateGroup(overrides map[string]string) error {
	names := slices.Sorted(maps.Keys(overrides))
	for _, name := range names {
		value := overrides[name]
		gc, ok := findGroupConfig(name)
		if !ok {
			return fmt.Errorf("unknown group config %q (see DescribeConfigs of a GROUP resource for the ones Sluice knows): %w", name, kerr.InvalidConfig)
		}
		if err := gc.validate(value); err != nil {
			return fmt.Errorf("group config %s=%q: %v: %w", name, value, err, kerr.InvalidConfig)
		}
	}
	c := ResolveShareGroup(DefaultShareGroup(), overrides)
	session, heartbeat := c.SessionTimeout, c.HeartbeatInterval
	if session == 0 {
		session = minShareSessionTimeoutMs * time.Millisecond
	}
	if heartbeat == 0 {
		heartbeat = minShareHeartbeatIntervalMs * time.Millisecond
	}
	if heartbeat >= session {
		return fmt.Errorf("group config share.heartbeat.interval.ms %d must be below share.session.timeout.ms %d: %w",
			heartbeat.Milliseconds(), session.Milliseconds(), kerr.InvalidConfig)
	}
	return nil
}

// ResolveShareGroup returns the share group config in force: the broker's
// defaults (DefaultShareGroup, or the broker's group.share.* settings)
// with the group's overrides applied. Values that do not validate are
// ignored (ValidateGroup refuses them before they are stored).
// SessionTimeout and HeartbeatInterval stay as in defaults (0: the group
// coordinator's broker defaults apply) unless the group sets them.
func ResolveShareGroup(defaults ShareGroup, overrides map[string]string) ShareGroup {
	c := defaults
	for _, gc := range groupConfigs {
		if v, ok := overrides[gc.name]; ok && gc.validate(v) == nil {
			gc.apply(&c, v)
		}
	}
	return c
}

// DescribeGroup returns every group config, sorted by name, with the
// group's override (GROUP_CONFIG), the broker's default when it is not
// Kafka's (STATIC_BROKER_CONFIG, from defaults) or Kafka's default
// (DEFAULT_CONFIG), as DescribeConfigs of a GROUP resource reports them.
func DescribeGroup(defaults ShareGroup, overrides map[string]string) []Entry {
	entries := make([]Entry, 0, len(groupConfigs))
	for _, gc := range groupConfigs {
		e := Entry{Name: gc.name, Type: gc.typ, Documentation: gc.doc}
		if v, ok := overrides[gc.name]; ok {
			e.Synonyms = append(e.Synonyms, Synonym{Name: gc.name, Value: v, Source: kmsg.ConfigSourceGroupConfig})
		}
		if v := gc.value(defaults); v != "" && v != gc.kafkaDefault {
			e.Synonyms = append(e.Synonyms, Synonym{Name: gc.brokerName, Value: v, Source: kmsg.ConfigSourceStaticBrokerConfig})
		}
		e.Synonyms = append(e.Synonyms, Synonym{Name: gc.brokerName, Value: gc.kafkaDefault, Source: kmsg.ConfigSourceDefaultConfig})
		e.Value, e.Source = e.Synonyms[0].Value, e.Synonyms[0].Source
		entries = append(entries, e)
	}
	return entries
}

// parseAutoOffsetReset parses share.auto.offset.reset: latest, earliest,
// or by_duration:<ISO-8601 duration> (PnDTnHnMn.nS, as Java's
// Duration.parse, not negative).
func parseAutoOffsetReset(v string) (string, time.Duration, error) {
	v = strings.TrimSpace(v)
	switch v {
	case "latest", "earliest":
		return v, 0, nil
	}
	spec, ok := strings.CutPrefix(v, "by_duration:")
	if !ok {
		return "", 0, fmt.Errorf("must be latest, earliest or by_duration:<ISO-8601 duration> such as by_duration:PT1H")
	}
	d, err := parseISODuration(spec)
	if err != nil {
		return "", 0, err
	}
	return "by_duration:" + spec, d, nil
}

// parseISODuration parses an ISO-8601 duration of days, hours, minutes
// and seconds (PnDTnHnMn.nS), as Java's Duration.parse does, refusing
// negative ones.
func parseISODuration(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("%q is not an ISO-8601 duration such as PT1H, PT30M or P1DT12H", s)
	}
	rest, ok := strings.CutPrefix(strings.ToUpper(s), "P")
	if !ok || rest == "" {
		return bad()
	}
	var total float64
	inTime := false
	units := map[bool]map[byte]float64{
		false: {'D': float64(24 * time.Hour)},
		true:  {'H': float64(time.Hour), 'M': float64(time.Minute), 'S': float64(time.Second)},
	}
	seen := false
	for rest != "" {
		if rest[0] == 'T' {
			if inTime || len(rest) == 1 {
				return bad()
			}
			inTime, rest = true, rest[1:]
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			return bad()
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		unit, ok := units[inTime][rest[i]]
		if err != nil || !ok || (rest[i] != 'S' && strings.Contains(rest[:i], ".")) {
			return bad()
		}
		total += n * unit
		rest, seen = rest[i+1:], true
	}
	if !seen || total > math.MaxInt64 {
		return bad()
	}
	return time.Duration(total), nil
}

// deadLetterTopic validates errors.deadletterqueue.topic.name: empty, or
// a legal topic name that is not internal.
func deadLetterTopic(v string) error {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return nil
	case len(v) > 249:
		return fmt.Errorf("a topic name has at most 249 characters")
	case v == "." || v == "..":
		return fmt.Errorf("a topic name cannot be . or ..")
	case strings.HasPrefix(v, "__"):
		return fmt.Errorf("the dead-letter topic cannot be an internal topic (starting with __)")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("a topic name has only ASCII letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// DefaultDeadLetterTopicPrefix is Kafka's default of the broker config
// errors.deadletterqueue.topic.name.prefix (KIP-1191).
const DefaultDeadLetterTopicPrefix = "dlq."

// deadLetterPrefix validates errors.deadletterqueue.topic.name.prefix:
// empty, or characters a topic name may hold.
func deadLetterPrefix(v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	if strings.HasPrefix(v, "__") {
		return fmt.Errorf("the prefix cannot start with __ (internal topics)")
	}
	if len(v) > 200 {
		return fmt.Errorf("the prefix has at most 200 characters, leaving room for a topic name after it")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("a topic name prefix has only ASCII letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// ValidateDeadLetterTopic checks a group's errors.deadletterqueue.topic.name
// against the broker's errors.deadletterqueue.topic.name.prefix (KIP-1191):
// a name that does not start with prefix is an INVALID_CONFIG saying which
// prefix it needs. An empty name (no dead-letter topic) and an empty
// prefix (no rule) pass.
func ValidateDeadLetterTopic(name, prefix string) error {
	name = strings.TrimSpace(name)
	if name == "" || prefix == "" || strings.HasPrefix(name, prefix) && len(name) > len(prefix) {
		return nil
	}
	return fmt.Errorf("group config errors.deadletterqueue.topic.name=%q: a dead-letter topic's name must start with %q "+
		"(the broker config errors.deadletterqueue.topic.name.prefix) and name a topic after it, such as %q: %w",
		name, prefix, prefix+name, kerr.InvalidConfig)
}
