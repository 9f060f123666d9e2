package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/log"
)

// NewFileCacheCollector reports the cache of open sealed segment files,
// read from stats at scrape time (log.DefaultFileCache.Stats in
// production): sluice_log_sealed_files_open, sluice_log_sealed_files_limit
// (log.max.open.sealed.files in force), sluice_log_sealed_file_opens_total
// and sluice_log_sealed_file_evictions_total. Opens growing as fast as
// reads means the limit is too low for the partitions being read.
func NewFileCacheCollector(stats func() log.FileCacheStats) prometheus.Collector {
	return &funcCollector{
		descs: []*prometheus.Desc{
			prometheus.NewDesc("sluice_log_sealed_files_open", "Sealed segment .log files the file cache holds open.", nil, nil),
			prometheus.NewDesc("sluice_log_sealed_files_limit", "Most sealed segment files the cache keeps open (log.max.open.sealed.files in force).", nil, nil),
			prometheus.NewDesc("sluice_log_sealed_file_opens_total", "Sealed segment files opened because a read found them closed.", nil, nil),
			prometheus.NewDesc("sluice_log_sealed_file_evictions_total", "Sealed segment files closed to stay within the limit.", nil, nil),
		},
		collect: func(descs []*prometheus.Desc, ch chan<- prometheus.Metric) {
			st := stats()
			ch <- prometheus.MustNewConstMetric(descs[0], prometheus.GaugeValue, float64(st.Open))
			ch <- prometheus.MustNewConstMetric(descs[1], prometheus.GaugeValue, float64(st.Limit))
			ch <- prometheus.MustNewConstMetric(descs[2], prometheus.CounterValue, float64(st.Opens))
			ch <- prometheus.MustNewConstMetric(descs[3], prometheus.CounterValue, float64(st.Evictions))
		},
	}
}
