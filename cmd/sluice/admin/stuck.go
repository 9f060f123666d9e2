package admin

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/consumergroup"
)

// StuckCollector reports, at scrape time, how many partitions each
// consumer group this node coordinates is stuck on
// (consumergroup.StuckPartitions): one sample per group, 0 when none, so
// the label set stays bounded by the groups. Safe for concurrent use.
type StuckCollector struct {
	check func() consumergroup.StuckReport
	stuck *prometheus.Desc
}

var _ prometheus.Collector = (*StuckCollector)(nil)

// NewStuckCollector returns a collector over check
// (consumergroup.StuckDetector.Check in production).
func NewStuckCollector(check func() consumergroup.StuckReport) *StuckCollector {
	return &StuckCollector{
		check: check,
		stuck: prometheus.NewDesc("sluice_group_stuck_partitions",
			"Partitions the consumer group is stuck on: committed offset unmoved, with lag, across group.stuck.rebalances rebalances or for group.stuck.timeout.ms with members.",
			[]string{"group"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StuckCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.stuck }

// Collect implements prometheus.Collector.
func (c *StuckCollector) Collect(ch chan<- prometheus.Metric) {
	report := c.check()
	counts := make(map[string]int, len(report.Groups))
	for _, g := range report.Groups {
		counts[g] = 0
	}
	for _, s := range report.Stuck {
		counts[s.Group]++
	}
	for g, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.stuck, prometheus.GaugeValue, float64(n), g)
	}
}

// StuckPath is where StuckHandler is served on the admin listener.
const StuckPath = "/v1/groups/stuck"

// StuckHandler serves GET StuckPath: the consumergroup.StuckReport of
// check as JSON (the groups this node coordinates and their stuck
// partitions, with reason, committed offset, high watermark, since when).
// `sluice group describe` reads it.
func StuckHandler(check func() consumergroup.StuckReport) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(check())
	})
}
