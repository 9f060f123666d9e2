package admin

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/wire"
)

// namespace prefixes every Sluice metric.
const namespace = "sluice"

// Buckets of the histograms, in base units.
var (
	// requestBuckets spans a cached metadata answer (100 µs) to a long
	// poll or a rebalance (30 s).
	requestBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// syncBuckets spans an fdatasync on NVMe (50 µs) to a stalled disk.
	syncBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	// syncByteBuckets spans 512 B to 128 MiB, by factors of 4.
	syncByteBuckets = prometheus.ExponentialBuckets(512, 4, 10)
)

// Metrics holds the process's metrics registry and the instruments fed by
// hooks: it implements wire.Observer and, through ObserveSync,
// log.SyncObserver. Scrape-time collectors (NewLogCollector,
// NewGroupCollector, NewConnectionCollector, ...) are added with Register.
// Safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry

	requests        *prometheus.CounterVec
	requestErrors   *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	// byKey caches each API's instruments, so the hot path does no label
	// lookup.
	byKey [128]atomic.Pointer[apiInstruments]

	bytesIn, recordsIn, bytesOut, recordsOut *prometheus.CounterVec

	syncDuration prometheus.Histogram
	syncBytes    prometheus.Histogram
}

// apiInstruments are one API's request counter and latency histogram.
type apiInstruments struct {
	name     string
	requests prometheus.Counter
	duration prometheus.Observer
}

var _ wire.Observer = (*Metrics)(nil)

// NewMetrics returns a registry holding the Go runtime and process
// collectors, sluice_build_info with version, and the hook-fed metrics.
func NewMetrics(version string) *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "requests_total",
		Help: "Kafka protocol requests handled, by API.",
	}, []string{"api"})
	m.requestErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "request_errors_total",
		Help: "Error codes in responses, by API and Kafka error name; a response counts once per error it carries (per partition, group, ...).",
	}, []string{"api", "code"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "request_duration_seconds",
		Help:    "Time from a decoded request to its response being ready, waits for acks and fetch data included, by API.",
		Buckets: requestBuckets,
	}, []string{"api"})
	topicCounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, []string{"topic"})
	}
	m.bytesIn = topicCounter("topic_bytes_in_total", "Record batch bytes appended by Produce requests, by topic.")
	m.recordsIn = topicCounter("topic_records_in_total", "Records appended by Produce requests, by topic.")
	m.bytesOut = topicCounter("topic_bytes_out_total", "Record batch bytes sent in Fetch responses, by topic.")
	m.recordsOut = topicCounter("topic_records_out_total", "Records in the batches sent in Fetch responses, by topic (a batch starting before the fetch offset counts whole).")
	m.syncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "log_sync_duration_seconds",
		Help:    "Time one partition log's sync took in a flusher round (fdatasync of the active segment, plus files of segments rolled since).",
		Buckets: syncBuckets,
	})
	m.syncBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "log_sync_bytes",
		Help:    "Appended bytes one partition log's sync made durable.",
		Buckets: syncByteBuckets,
	})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; labels give the Sluice version and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.requests, m.requestErrors, m.requestDuration,
		m.bytesIn, m.recordsIn, m.bytesOut, m.recordsOut,
		m.syncDuration, m.syncBytes,
	)
	return m
}

// Registry returns the registry, for New and for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Register adds scrape-time collectors; it fails if one's metrics clash
// with metrics already registered.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.registry.Register(c); err != nil {
			return fmt.Errorf("admin: register collector: %w", err)
		}
	}
	return nil
}

// api returns key's instruments, creating them on first use.
func (m *Metrics) api(key int16) *apiInstruments {
	if key < 0 || int(key) >= len(m.byKey) {
		name := fmt.Sprintf("key%d", key)
		return &apiInstruments{name: name, requests: m.requests.WithLabelValues(name), duration: m.requestDuration.WithLabelValues(name)}
	}
	if a := m.byKey[key].Load(); a != nil {
		return a
	}
	name := kmsg.NameForKey(key)
	if name == "" || name == "Unknown" {
		name = fmt.Sprintf("key%d", key)
	}
	a := &apiInstruments{name: name, requests: m.requests.WithLabelValues(name), duration: m.requestDuration.WithLabelValues(name)}
	m.byKey[key].CompareAndSwap(nil, a)
	return m.byKey[key].Load()
}

// RequestDone implements wire.Observer.
func (m *Metrics) RequestDone(key int16, took time.Duration, errorCodes []int16) {
	a := m.api(key)
	a.requests.Inc()
	a.duration.Observe(took.Seconds())
	for _, c := range errorCodes {
		m.requestErrors.WithLabelValues(a.name, ErrorName(c)).Inc()
	}
}

// Produced implements wire.Observer.
func (m *Metrics) Produced(topic string, bytes, records int64) {
	m.bytesIn.WithLabelValues(topic).Add(float64(bytes))
	m.recordsIn.WithLabelValues(topic).Add(float64(records))
}

// Fetched implements wire.Observer.
func (m *Metrics) Fetched(topic string, bytes, records int64) {
	m.bytesOut.WithLabelValues(topic).Add(float64(bytes))
	m.recordsOut.WithLabelValues(topic).Add(float64(records))
}

// ObserveSync is a log.SyncObserver: pass it as
// replication.Options.SyncObserver.
func (m *Metrics) ObserveSync(s log.SyncInfo) {
	m.syncDuration.Observe(s.Took.Seconds())
	m.syncBytes.Observe(float64(s.Bytes))
}

// ErrorName returns Kafka's name of an error code (NOT_LEADER_OR_FOLLOWER
// is NOT_LEADER_FOR_PARTITION in franz-go's table), or UNKNOWN_CODE_<n>
// for a code Kafka does not define.
func ErrorName(code int16) string {
	if code == kerr.UnknownServerError.Code {
		return kerr.UnknownServerError.Message
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && e != kerr.UnknownServerError {
		return e.Message
	}
	return fmt.Sprintf("UNKNOWN_CODE_%d", code)
}
