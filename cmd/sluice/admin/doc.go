// Package admin is Sluice's HTTP admin listener: Prometheus metrics at
// /metrics, liveness at /healthz, readiness at /readyz and, when enabled,
// the Go profiler under /debug/pprof/. `sluice serve` owns it: it binds
// the listener before loading data (so /healthz answers and /readyz says
// "not ready" during a long recovery), serves it next to the Kafka
// listener and shuts it down with it.
//
// It lives under cmd/sluice because it is process assembly: it is the only
// package that imports prometheus/client_golang. The packages below (log,
// partition, replication, consumergroup, wire) know nothing of Prometheus:
// they expose plain stats methods (log.Stats, replication.Partition.LogStats
// and TimestampAt, consumergroup.Coordinator.Stats, wire.Server.Stats) and
// hooks (wire.Observer, log.SyncObserver). Metrics implements the hooks
// with Prometheus counters and histograms; the collectors in this package
// read the stats methods at scrape time, so nothing is computed between
// scrapes.
//
// # Files
//
//	server.go     Server: the HTTP listener, its routes, Serve and Shutdown
//	readiness.go  Readiness: named checks behind /readyz
//	metrics.go    Metrics: registry, wire.Observer and log.SyncObserver
//	collectors.go scrape-time collectors: logs, partitions, connections
//	lag.go        consumer group collector: states, members, offset and time lag
//	dashboard.json a Grafana dashboard over these metrics
//
// # Invariants
//
//   - Label sets are bounded by what the operator creates: API names (the
//     dispatch table), Kafka error code names, topics, partitions and
//     groups. No label carries a client id, host or member id.
//   - Hooks never block: they only update Prometheus counters and
//     histograms (atomic adds).
//   - A scrape reads each partition's offsets once, and a record's
//     timestamp (for time lag) at most once per (partition, committed
//     offset) for as long as some group's committed offset stays there:
//     the timestamp cache keeps only the entries the last scrape used.
//
// # Locking
//
// GroupCollector.mu serialises scrapes of the group collector and guards
// its timestamp cache; it is held while Coordinator.Stats takes the
// coordinator's lock (lock order: GroupCollector.mu, then
// consumergroup.Coordinator.mu) and never while a request waits on it.
// Readiness.mu guards the list of checks only; checks run outside it.
//
// # Glossary
//
//   - offset lag: high watermark minus the group's committed offset, in
//     records (0 when the group is caught up).
//   - time lag: how old the record at the committed offset is (now minus
//     its timestamp), in seconds; 0 when the group is caught up.
//
// # Non-obvious
//
//   - net/http/pprof registers on http.DefaultServeMux when imported; this
//     package never serves DefaultServeMux, so the profiler is reachable
//     only through the routes added when Config.Pprof is true.
//   - Per-topic counters of deleted topics keep their last value until the
//     process restarts (Prometheus counters must not go backwards); gauges
//     from collectors disappear with the topic at the next scrape.
package admin
