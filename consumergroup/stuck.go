package consumergroup

import (
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Reasons a group partition is stuck (StuckPartition.Reason).
const (
	// StuckRebalances: the group rebalanced at least
	// Config.StuckRebalances times since the offset last moved, as a
	// consumer crash-looping on one record does.
	StuckRebalances = "rebalances"
	// StuckTimeout: the offset has not moved for Config.StuckTimeout
	// while the group had members.
	StuckTimeout = "timeout"
)

// StuckPartition is one partition a group is stuck on: its committed
// offset has not moved while the partition's high watermark is above it.
type StuckPartition struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Offset is the committed offset: the record the group does not get
	// past.
	Offset int64 `json:"committed_offset"`
	// HighWatermark is the partition's high watermark as this node sees
	// it.
	HighWatermark int64 `json:"high_watermark"`
	// Reason is StuckRebalances or StuckTimeout (rebalances when both
	// hold).
	Reason string `json:"reason"`
	// Rebalances is how many generations the group went through since
	// the offset last moved.
	Rebalances int32 `json:"rebalances"`
	// Members is the group's member count.
	Members int `json:"members"`
	// MovedAt is when the offset last moved (ms since the epoch).
	MovedAt int64 `json:"offset_moved_at_ms"`
	// Since is when this node first found the partition stuck (ms since
	// the epoch); StuckPartitions leaves it 0, StuckDetector fills it.
	Since int64 `json:"stuck_since_ms"`
}

// StuckReport is one evaluation: the groups looked at and the stuck
// partitions among them.
type StuckReport struct {
	// Groups are the ids of every group this coordinator holds, sorted.
	Groups []string `json:"groups"`
	// Stuck are the stuck partitions, sorted by group, topic, partition.
	Stuck []StuckPartition `json:"stuck"`
}

// HighWatermark returns a partition's high watermark as this node sees
// it; ok is false when the partition is unknown here.
type HighWatermark func(topic string, partition int32) (hw int64, ok bool)

// StuckPartitions returns the stuck partitions of groups (as Stats returns
// them) at now: a partition with a committed offset below its high
// watermark whose offset has not moved for Config.StuckRebalances
// generations, or for Config.StuckTimeout while the group has members
// (a zero setting turns its test off). Partitions without a committed
// offset, or whose high watermark hw does not know, are never stuck. It
// is a pure function of its arguments.
func StuckPartitions(groups []GroupStats, hw HighWatermark, cfg Config, now time.Time) []StuckPartition {
	var out []StuckPartition
	nowMs := now.UnixMilli()
	for _, g := range groups {
		for _, o := range g.Offsets {
			h, ok := hw(o.Topic, o.Partition)
			if !ok || h <= o.Offset || o.Offset < 0 {
				continue
			}
			rebalances := g.Generation - o.MovedGeneration
			reason := ""
			switch {
			case cfg.StuckRebalances > 0 && int64(rebalances) >= int64(cfg.StuckRebalances):
				reason = StuckRebalances
			case cfg.StuckTimeout > 0 && g.Members > 0 && nowMs-o.MovedTimestamp >= cfg.StuckTimeout.Milliseconds():
				reason = StuckTimeout
			default:
				continue
			}
			out = append(out, StuckPartition{
				Group: g.ID, Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, HighWatermark: h,
				Reason: reason, Rebalances: max(rebalances, 0), Members: g.Members, MovedAt: o.MovedTimestamp,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return stuckLess(out[i].key(), out[j].key()) })
	return out
}

// stuckKey names one group partition.
type stuckKey struct {
	group, topic string
	partition    int32
}

func (s StuckPartition) key() stuckKey { return stuckKey{s.Group, s.Topic, s.Partition} }

func stuckLess(a, b stuckKey) bool {
	if a.group != b.group {
		return a.group < b.group
	}
	if a.topic != b.topic {
		return a.topic < b.topic
	}
	return a.partition < b.partition
}

// StuckDetector evaluates StuckPartitions over a coordinator's groups
// when asked (Check: metric scrapes, the admin endpoint) and on a slow
// timer (Start), and logs each change: a Warn when a partition becomes
// stuck (or is stuck at a new offset), an Info when it no longer is. The
// cost of an evaluation is one Stats copy plus one high watermark read per
// committed partition; nothing runs per commit. Safe for concurrent use.
type StuckDetector struct {
	groups func() []GroupStats
	hw     HighWatermark
	cfg    Config
	logger *zap.Logger
	now    func() time.Time

	// mu serialises evaluations and guards the fields below. Lock order:
	// mu, then the coordinator's lock (taken by groups).
	mu    sync.Mutex
	stuck map[stuckKey]StuckPartition
	timer *time.Timer
	// stopped is set by Stop: the timer is not armed again.
	stopped bool
}

// NewStuckDetector returns a detector over groups (Coordinator.Stats in
// production) and hw with cfg's thresholds; now is the clock (nil means
// time.Now), a nil logger means nop.
func NewStuckDetector(groups func() []GroupStats, hw HighWatermark, cfg Config, logger *zap.Logger, now func() time.Time) *StuckDetector {
	if logger == nil {
		logger = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	return &StuckDetector{
		groups: groups, hw: hw, cfg: cfg, now: now,
		logger: logger.Named("consumergroup"),
		stuck:  make(map[stuckKey]StuckPartition),
	}
}

// Check evaluates now, logs the changes since the previous evaluation and
// returns the report; its slices are the caller's.
func (d *StuckDetector) Check() StuckReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.checkLocked()
}

func (d *StuckDetector) checkLocked() StuckReport {
	groups := d.groups()
	now := d.now()
	found := StuckPartitions(groups, d.hw, d.cfg, now)
	report := StuckReport{Groups: make([]string, 0, len(groups)), Stuck: make([]StuckPartition, 0, len(found))}
	for _, g := range groups {
		report.Groups = append(report.Groups, g.ID)
	}
	next := make(map[stuckKey]StuckPartition, len(found))
	for _, s := range found {
		k := s.key()
		if old, ok := d.stuck[k]; ok && old.Offset == s.Offset {
			s.Since = old.Since
		} else {
			s.Since = now.UnixMilli()
			d.logger.Warn("consumer group stuck on a partition",
				zap.String("group", s.Group), zap.String("topic", s.Topic), zap.Int32("partition", s.Partition),
				zap.Int64("committed-offset", s.Offset), zap.Int64("high-watermark", s.HighWatermark),
				zap.String("reason", s.Reason), zap.Int32("rebalances", s.Rebalances),
				zap.Duration("unmoved-for", time.Duration(now.UnixMilli()-s.MovedAt)*time.Millisecond),
				zap.String("fix", "stop the group's consumers, then `sluice group dead-letter` the record"))
		}
		next[k] = s
		report.Stuck = append(report.Stuck, s)
	}
	held := make(map[string]bool, len(groups))
	for _, g := range groups {
		held[g.ID] = true
	}
	for k, old := range d.stuck {
		if _, ok := next[k]; ok {
			continue
		}
		msg := "consumer group no longer stuck on a partition"
		if !held[k.group] {
			// Coordinator moved to another node, group deleted, or
			// shutting down: this node cannot tell any more.
			msg = "consumer group partition no longer judged here"
		}
		d.logger.Info(msg, zap.String("group", k.group), zap.String("topic", k.topic), zap.Int32("partition", k.partition),
			zap.Int64("was-stuck-at", old.Offset))
	}
	d.stuck = next
	return report
}

// Start evaluates every interval until Stop, so that a stuck partition is
// logged even when nothing scrapes metrics.
func (d *StuckDetector) Start(interval time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.timer != nil {
		return
	}
	var tick func()
	tick = func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.stopped {
			return
		}
		d.checkLocked()
		d.timer = time.AfterFunc(interval, tick)
	}
	d.timer = time.AfterFunc(interval, tick)
}

// Stop ends Start's timer; an evaluation under way finishes first.
func (d *StuckDetector) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
}
