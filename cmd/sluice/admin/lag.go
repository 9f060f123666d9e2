package admin

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/partition"
)

// GroupCollector reports consumer groups at scrape time: how many are in
// each state, each group's state and members, and for every committed
// partition the committed offset, the offset lag (high watermark minus
// committed offset) and the time lag (age of the record at the committed
// offset). Safe for concurrent use: scrapes are serialised.
type GroupCollector struct {
	groups     func() []consumergroup.GroupStats
	partitions Partitions
	now        func() time.Time

	groupsByState, state, members *prometheus.Desc
	committed, offsetLag, timeLag *prometheus.Desc

	// mu serialises Collect and guards timestamps. Lock order: mu, then
	// the coordinator's lock (taken by groups).
	mu sync.Mutex
	// timestamps caches the timestamp (ms) of the record at a committed
	// offset: records never change, so an entry stays right while the
	// offset is in the log. Each scrape keeps only the entries it used.
	timestamps map[offsetKey]int64
}

// offsetKey is one offset of one partition.
type offsetKey struct {
	topic     string
	partition int32
	offset    int64
}

var _ prometheus.Collector = (*GroupCollector)(nil)

// NewGroupCollector returns a collector over groups
// (consumergroup.Coordinator.Stats in production) and partitions; now is
// the clock for time lag (nil means time.Now).
func NewGroupCollector(groups func() []consumergroup.GroupStats, partitions Partitions, now func() time.Time) *GroupCollector {
	if now == nil {
		now = time.Now
	}
	lagLabels := []string{"group", "topic", "partition"}
	return &GroupCollector{
		groups:     groups,
		partitions: partitions,
		now:        now,
		groupsByState: prometheus.NewDesc("sluice_groups",
			"Consumer groups this node coordinates, by state.", []string{"state"}, nil),
		state: prometheus.NewDesc("sluice_group_state",
			"1 for the group's current state (Empty, PreparingRebalance, CompletingRebalance, Stable).", []string{"group", "state"}, nil),
		members: prometheus.NewDesc("sluice_group_members",
			"Members of the consumer group.", []string{"group"}, nil),
		committed: prometheus.NewDesc("sluice_group_committed_offset",
			"The group's committed offset of the partition: the next record it will consume.", lagLabels, nil),
		offsetLag: prometheus.NewDesc("sluice_group_offset_lag",
			"Records the group has yet to consume: the partition's high watermark minus the committed offset (0 when caught up).", lagLabels, nil),
		timeLag: prometheus.NewDesc("sluice_group_time_lag_seconds",
			"Age of the record at the group's committed offset (0 when caught up): how far behind in time the group is.", lagLabels, nil),
		timestamps: make(map[offsetKey]int64),
	}
}

// Describe implements prometheus.Collector.
func (c *GroupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.groupsByState, c.state, c.members, c.committed, c.offsetLag, c.timeLag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *GroupCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	groups := c.groups()
	byState := make(map[string]int, len(consumergroup.GroupStates))
	for _, s := range consumergroup.GroupStates {
		byState[s] = 0
	}
	// Each partition's offsets are read once per scrape, however many
	// groups consume it.
	type tp struct {
		topic     string
		partition int32
	}
	readers := make(map[tp]PartitionReader)
	for _, p := range c.partitions() {
		readers[tp{p.Topic, p.Index}] = p.Reader
	}
	offsets := make(map[tp]partition.Offsets)
	used := make(map[offsetKey]int64)
	nowMs := c.now().UnixMilli()
	for _, g := range groups {
		byState[g.State]++
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, 1, g.ID, g.State)
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(g.Members), g.ID)
		for _, o := range g.Offsets {
			key := tp{o.Topic, o.Partition}
			reader, ok := readers[key]
			if !ok {
				continue // the topic was deleted, or the partition is not here
			}
			po, ok := offsets[key]
			if !ok {
				if po, ok = reader.LocalOffsets(); !ok {
					continue // no replica on this node: lag unknown here
				}
				offsets[key] = po
			}
			index := strconv.Itoa(int(o.Partition))
			lag := max(po.HighWatermark-o.Offset, 0)
			ch <- prometheus.MustNewConstMetric(c.committed, prometheus.GaugeValue, float64(o.Offset), g.ID, o.Topic, index)
			ch <- prometheus.MustNewConstMetric(c.offsetLag, prometheus.GaugeValue, float64(lag), g.ID, o.Topic, index)
			if lag == 0 {
				ch <- prometheus.MustNewConstMetric(c.timeLag, prometheus.GaugeValue, 0, g.ID, o.Topic, index)
				continue
			}
			ts, ok := c.timestamp(reader, offsetKey{o.Topic, o.Partition, o.Offset}, used)
			if !ok {
				continue // no record or no timestamp: time lag unknown
			}
			age := max(nowMs-ts, 0)
			ch <- prometheus.MustNewConstMetric(c.timeLag, prometheus.GaugeValue, float64(age)/1000, g.ID, o.Topic, index)
		}
	}
	for s, n := range byState {
		ch <- prometheus.MustNewConstMetric(c.groupsByState, prometheus.GaugeValue, float64(n), s)
	}
	c.timestamps = used
}

// timestamp returns the timestamp of the record at key's offset, from the
// cache or the partition, and notes it in used. ok is false when there is
// no such record or it has no timestamp.
func (c *GroupCollector) timestamp(reader PartitionReader, key offsetKey, used map[offsetKey]int64) (int64, bool) {
	if ts, ok := used[key]; ok {
		return ts, ts >= 0
	}
	ts, ok := c.timestamps[key]
	if !ok {
		_, t, found, err := reader.TimestampAt(key.offset)
		if err != nil || !found {
			// Not cached: the record may appear (committed offset at the
			// high watermark is handled above) or the error may pass.
			return 0, false
		}
		ts = t
	}
	used[key] = ts
	return ts, ts >= 0
}
