package admin

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/replication"
)

// Storage is what the storage metrics and readiness check read of the
// node (replication.Cluster in production).
type Storage interface {
	// Space is the last free-space check of the data dir.
	Space() replication.SpaceState
	// FailedReplicas are the replicas whose storage failed.
	FailedReplicas() []replication.FailedReplica
}

var _ Storage = (*replication.Cluster)(nil)

// NewStorageCollector reports the data dir's storage state at scrape time:
// sluice_storage_free_bytes and sluice_storage_total_bytes (the
// filesystem's available bytes and size at the last check),
// sluice_storage_min_free_bytes (storage.min.free.bytes),
// sluice_storage_space_low (1 while appends are refused for lack of
// space), sluice_storage_failed_replicas (replicas whose disk failed: they
// neither lead nor vote until the node restarts) and
// sluice_storage_replica_failed{topic,partition} (1 for each of them).
func NewStorageCollector(s Storage) prometheus.Collector {
	return &funcCollector{
		descs: []*prometheus.Desc{
			prometheus.NewDesc("sluice_storage_free_bytes", "Bytes available on the data dir's filesystem at the last check.", []string{"dir"}, nil),
			prometheus.NewDesc("sluice_storage_total_bytes", "Size of the data dir's filesystem in bytes.", []string{"dir"}, nil),
			prometheus.NewDesc("sluice_storage_min_free_bytes", "storage.min.free.bytes: below it appends are refused (0: off).", []string{"dir"}, nil),
			prometheus.NewDesc("sluice_storage_space_low", "1 while the data dir has less free space than storage.min.free.bytes and appends are refused with KAFKA_STORAGE_ERROR.", []string{"dir"}, nil),
			prometheus.NewDesc("sluice_storage_failed_replicas", "Partition replicas on this node whose storage failed (write or fsync error); they neither lead nor vote until the node restarts.", nil, nil),
			prometheus.NewDesc("sluice_storage_replica_failed", "1 for each partition replica on this node whose storage failed.", []string{"topic", "partition"}, nil),
		},
		collect: func(descs []*prometheus.Desc, ch chan<- prometheus.Metric) {
			sp := s.Space()
			low := 0.0
			if sp.Low {
				low = 1
			}
			ch <- prometheus.MustNewConstMetric(descs[0], prometheus.GaugeValue, float64(sp.FreeBytes), sp.Dir)
			ch <- prometheus.MustNewConstMetric(descs[1], prometheus.GaugeValue, float64(sp.TotalBytes), sp.Dir)
			ch <- prometheus.MustNewConstMetric(descs[2], prometheus.GaugeValue, float64(sp.MinFreeBytes), sp.Dir)
			ch <- prometheus.MustNewConstMetric(descs[3], prometheus.GaugeValue, low, sp.Dir)
			failed := s.FailedReplicas()
			ch <- prometheus.MustNewConstMetric(descs[4], prometheus.GaugeValue, float64(len(failed)))
			for _, f := range failed {
				ch <- prometheus.MustNewConstMetric(descs[5], prometheus.GaugeValue, 1, f.Topic, strconv.Itoa(int(f.Partition)))
			}
		},
	}
}

// StorageCheck is the "storage" readiness check: it fails, saying why,
// while appends are refused for lack of space or while a replica's
// storage has failed.
func StorageCheck(s Storage) func() error {
	return func() error {
		var problems []string
		if sp := s.Space(); sp.Low {
			problems = append(problems, fmt.Sprintf("disk %s has %d bytes free, below storage.min.free.bytes %d: appends are refused", sp.Dir, sp.FreeBytes, sp.MinFreeBytes))
		}
		for _, f := range s.FailedReplicas() {
			problems = append(problems, fmt.Sprintf("replica %s-%d failed (it neither leads nor votes until restart): %v", f.Topic, f.Partition, f.Err))
		}
		if len(problems) == 0 {
			return nil
		}
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
}
