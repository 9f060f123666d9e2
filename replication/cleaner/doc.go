// Package cleaner runs the background work that removes old data from a
// node's partition replicas: retention (cleanup.policy delete: segments
// past retention.ms or retention.bytes) and compaction (cleanup.policy
// compact: older records of a key, tombstones past delete.retention.ms).
// It owns the schedule and its counters, nothing else.
//
// What to clean, and how, is not its business: the cluster hands it the
// partitions (Targets, listed anew on every pass) and each replica decides
// what retention deletes and whether a compaction is due
// (partition.Replica.EnforceRetention and Compact). The schedule is the
// effective broker config (log.retention.check.interval.ms,
// log.cleaner.enable, log.cleaner.backoff.ms, ...), changed at run time
// with SetConfig.
//
// # Goroutines
//
// Start runs two goroutines, stopped and waited for by Stop:
//
//	retention  every RetentionCheckInterval: EnforceRetention on every target
//	cleaner    every Backoff while Enable: Compact on each compacted target,
//	           one at a time, throttled by IOMaxBytesPerSecond
//
// Each waits on one timer and on a wake channel that SetConfig signals;
// a changed schedule restarts the timer, so the next pass is one new
// interval after the change.
//
// # Invariants
//
//   - After Stop returns no goroutine of the Cleaner runs and no replica is
//     called: the cluster closes replicas only after it.
//   - A compaction in progress when Stop is called is cancelled through its
//     context.
//   - A replica closed or deleted under a pass (partition.ErrClosed) is
//     skipped, not counted as an error.
//
// # Locking
//
// Cleaner.mu guards the schedule only and is a leaf: nothing is called
// while it is held. Targets is called without it; the cluster takes its own
// lock inside Targets and releases it before returning, so the cleaner
// never calls a replica under the cluster's lock. The cluster may call
// SetConfig while holding its lock.
//
// # Non-obvious
//
//   - Retention passes run over every partition whatever its policy: the
//     replica knows its cleanup.policy and does nothing without delete.
//   - Counters are cumulative since Start and read without locking.
package cleaner
