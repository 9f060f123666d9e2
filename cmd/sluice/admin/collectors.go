package admin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/wire"
)

// PartitionReader is what the collectors read of one partition;
// *replication.Partition implements it.
type PartitionReader interface {
	// LocalOffsets returns the log start, high watermark and log end
	// offsets of this node's replica (a follower's included); not ok when
	// the partition has no replica here.
	LocalOffsets() (partition.Offsets, bool)
	// LogStats returns the local log's size and segment count.
	LogStats() log.Stats
	// TimestampAt returns the first committed record at or after offset
	// and its timestamp (ms).
	TimestampAt(offset int64) (recordOffset, timestamp int64, found bool, err error)
}

var _ PartitionReader = (*replication.Partition)(nil)

// Partition names one local partition and reads it.
type Partition struct {
	Topic  string
	Index  int32
	Reader PartitionReader
}

// Partitions lists the node's partitions; collectors call it once per
// scrape. The slice is the caller's.
type Partitions func() []Partition

// ClusterPartitions lists every partition of every topic of c.
func ClusterPartitions(c *replication.Cluster) Partitions {
	return func() []Partition {
		var out []Partition
		for _, t := range c.Topics() {
			for i := range t.PartitionCount() {
				out = append(out, Partition{Topic: t.Name(), Index: i, Reader: t.Partition(i)})
			}
		}
		return out
	}
}

// partitionLabels are the labels of per-partition metrics.
var partitionLabels = []string{"topic", "partition"}

// LogCollector reports each partition's log size, segment count and
// offsets at scrape time.
type LogCollector struct {
	partitions                           Partitions
	size, segments, highWatermark, start *prometheus.Desc
}

var _ prometheus.Collector = (*LogCollector)(nil)

// NewLogCollector returns a collector over partitions.
func NewLogCollector(partitions Partitions) *LogCollector {
	return &LogCollector{
		partitions: partitions,
		size: prometheus.NewDesc("sluice_log_size_bytes",
			"Bytes of the partition's segment .log files on this node (indexes not included).", partitionLabels, nil),
		segments: prometheus.NewDesc("sluice_log_segments",
			"Segments of the partition's log on this node, the active one included.", partitionLabels, nil),
		highWatermark: prometheus.NewDesc("sluice_partition_high_watermark",
			"The partition's high watermark: the offset after the last committed record.", partitionLabels, nil),
		start: prometheus.NewDesc("sluice_partition_log_start_offset",
			"The partition's log start offset: the first offset still stored.", partitionLabels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *LogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.segments
	ch <- c.highWatermark
	ch <- c.start
}

// Collect implements prometheus.Collector.
func (c *LogCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.partitions() {
		index := strconv.Itoa(int(p.Index))
		o, ok := p.Reader.LocalOffsets()
		if !ok {
			continue // no replica on this node
		}
		st := p.Reader.LogStats()
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(st.Bytes), p.Topic, index)
		ch <- prometheus.MustNewConstMetric(c.segments, prometheus.GaugeValue, float64(st.Segments), p.Topic, index)
		ch <- prometheus.MustNewConstMetric(c.highWatermark, prometheus.GaugeValue, float64(o.HighWatermark), p.Topic, index)
		ch <- prometheus.MustNewConstMetric(c.start, prometheus.GaugeValue, float64(o.LogStart), p.Topic, index)
	}
}

// NewConnectionCollector reports the protocol server's connections and
// request memory: sluice_connections_open,
// sluice_connections_accepted_total, sluice_request_memory_bytes (held by
// requests being read or answered and fetch responses not yet written),
// sluice_request_memory_limit_bytes (queued.max.request.bytes; -1
// unbounded), sluice_request_memory_peak_bytes and
// sluice_request_memory_waiting_connections, read from stats at scrape
// time (wire.Server.Stats in production).
func NewConnectionCollector(stats func() wire.Stats) prometheus.Collector {
	return &funcCollector{
		descs: []*prometheus.Desc{
			prometheus.NewDesc("sluice_connections_open", "Kafka protocol client connections open now.", nil, nil),
			prometheus.NewDesc("sluice_connections_accepted_total", "Kafka protocol client connections accepted since start.", nil, nil),
			prometheus.NewDesc("sluice_request_memory_bytes", "Memory held by requests being read or answered and by fetch responses not yet written.", nil, nil),
			prometheus.NewDesc("sluice_request_memory_limit_bytes", "queued.max.request.bytes: the request memory budget; -1 when unbounded.", nil, nil),
			prometheus.NewDesc("sluice_request_memory_peak_bytes", "Highest request memory held since start.", nil, nil),
			prometheus.NewDesc("sluice_request_memory_waiting_connections", "Connections not reading because the request memory budget is used up.", nil, nil),
		},
		collect: func(descs []*prometheus.Desc, ch chan<- prometheus.Metric) {
			st := stats()
			ch <- prometheus.MustNewConstMetric(descs[0], prometheus.GaugeValue, float64(st.OpenConnections))
			ch <- prometheus.MustNewConstMetric(descs[1], prometheus.CounterValue, float64(st.AcceptedConnections))
			ch <- prometheus.MustNewConstMetric(descs[2], prometheus.GaugeValue, float64(st.RequestMemory.Used))
			ch <- prometheus.MustNewConstMetric(descs[3], prometheus.GaugeValue, float64(st.RequestMemory.Limit))
			ch <- prometheus.MustNewConstMetric(descs[4], prometheus.GaugeValue, float64(st.RequestMemory.Peak))
			ch <- prometheus.MustNewConstMetric(descs[5], prometheus.GaugeValue, float64(st.RequestMemory.Waiting))
		},
	}
}

// NewFlushCollector reports the flusher's counters, read from stats at
// scrape time (replication.Cluster.FlushStats in production):
// sluice_log_fsyncs_total, sluice_log_flush_rounds_total and
// sluice_log_synced_bytes_total.
func NewFlushCollector(stats func() log.FlushStats) prometheus.Collector {
	return &funcCollector{
		descs: []*prometheus.Desc{
			prometheus.NewDesc("sluice_log_fsyncs_total", "File syncs (fdatasync) the flusher did.", nil, nil),
			prometheus.NewDesc("sluice_log_flush_rounds_total", "Flusher rounds; one round syncs every dirty log concurrently (group commit).", nil, nil),
			prometheus.NewDesc("sluice_log_synced_bytes_total", "Appended bytes the flusher made durable.", nil, nil),
		},
		collect: func(descs []*prometheus.Desc, ch chan<- prometheus.Metric) {
			st := stats()
			ch <- prometheus.MustNewConstMetric(descs[0], prometheus.CounterValue, float64(st.Syncs))
			ch <- prometheus.MustNewConstMetric(descs[1], prometheus.CounterValue, float64(st.Rounds))
			ch <- prometheus.MustNewConstMetric(descs[2], prometheus.CounterValue, float64(st.Bytes))
		},
	}
}

// funcCollector is a collector of fixed descs whose values a func reads.
type funcCollector struct {
	descs   []*prometheus.Desc
	collect func(descs []*prometheus.Desc, ch chan<- prometheus.Metric)
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) { c.collect(c.descs, ch) }

// NewQuotaCollector reports client quota throttling, by quota (produce:
// producer_byte_rate, fetch: consumer_byte_rate, request:
// request_percentage): sluice_quota_throttled_responses_total,
// sluice_quota_throttle_seconds_total (the throttle time given), and
// sluice_quota_clients (rate sensors kept), read from stats at scrape
// time (wire.Server.Stats in production).
func NewQuotaCollector(stats func() wire.Stats) prometheus.Collector {
	return &funcCollector{
		descs: []*prometheus.Desc{
			prometheus.NewDesc("sluice_quota_throttled_responses_total", "Responses throttled by a client quota, by quota (produce, fetch, request).", []string{"quota"}, nil),
			prometheus.NewDesc("sluice_quota_throttle_seconds_total", "Throttle time given to clients over a quota, by quota (produce, fetch, request).", []string{"quota"}, nil),
			prometheus.NewDesc("sluice_quota_clients", "Client quota buckets being measured.", nil, nil),
		},
		collect: func(descs []*prometheus.Desc, ch chan<- prometheus.Metric) {
			st := stats().Quotas
			for i, kind := range wire.QuotaKinds {
				ch <- prometheus.MustNewConstMetric(descs[0], prometheus.CounterValue, float64(st.Throttled[i]), kind)
				ch <- prometheus.MustNewConstMetric(descs[1], prometheus.CounterValue, st.ThrottleTime[i].Seconds(), kind)
			}
			ch <- prometheus.MustNewConstMetric(descs[2], prometheus.GaugeValue, float64(st.Clients))
		},
	}
}
