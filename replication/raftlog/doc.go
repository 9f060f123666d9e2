// Package raftlog is the Raft log store of one partition: a raft.LogStore
// that keeps the partition's record batches in the partition's own
// segment log, so each produced byte is written to disk once, where
// consumers read it.
//
// # The decision
//
// A partition's Raft log could live in a log of its own (raft-boltdb, a
// WAL) with every batch copied to the segments when applied: every byte
// written twice, and fsyncs of two files. Instead the segment log is the
// Raft log, as in Redpanda. Three things make that work:
//
//   - One Raft command entry holds exactly one record batch. StoreLogs
//     stamps a copy of it with its base offset (the log end, the same on
//     every replica because the logs are identical prefixes) and with the
//     entry's term as partition leader epoch, and appends it. A produce
//     request with several batches for a partition is several entries.
//   - Raft's own entries (no-op, configuration, barrier) and commands that
//     are not record batches (they carry Extensions) never enter the
//     segments: they take no Kafka offset, offsets stay dense and no fetch
//     has to skip them. They live in the sidecar file, which is synced
//     only when written to: at elections, membership changes and admin
//     commands, not per produce.
//   - Raft indexes map to offsets through marks {index, offset} kept in
//     the sidecar every 64 segment entries: GetLog walks batch headers
//     forward from the nearest mark, skipping indexes the sidecar holds,
//     and a cursor makes the sequential reads of replication cost one
//     header each. raft.LogCache in front serves followers in sync.
//
// # On disk
//
//	<partition dir>/
//	  00000000000000000000.log   batches, verbatim (package log)
//	  raft.sidecar               records (sidecar.go has the format):
//	                             entry {index, term, type, data, ext}
//	                             mark {index, offset}
//	                             truncate {index}  first {index}
//	                             reset {next index}
//
// # Invariants
//
//   - Entries held are [first, last] without a gap; each is either in the
//     sidecar or is a batch in the segment log, and the batches of the
//     window are contiguous in offset order.
//   - The first segment entry at or after first has a mark that is
//     durable: walks always have a starting point.
//   - StoreLogs writes (and, when it holds an entry or the window's first
//     mark, syncs) its sidecar records before any of its batches reach the
//     segment file: a batch on disk never lacks the entry before it, which
//     it would otherwise take the index of on recovery.
//   - A record that survives a crash but describes a batch that did not
//     (a mark past the log end, an entry after a gap) is dropped on Open,
//     and the sidecar is rewritten without it before anything new is
//     stored at that offset.
//   - DeleteRange from the head moves first only: the batches stay for
//     Kafka's retention, which must keep every batch at or after
//     FirstOffset. DeleteRange of a suffix truncates the segment log
//     (durably) before the sidecar says so.
//   - A failed write or fsync (log.IsStorageError) of the segments or the
//     sidecar fails the store for good: every later StoreLogs, DeleteRange
//     and Reset returns that error, Failed reports it, and OnFailure is
//     told once. After a failed fsync the kernel may have dropped the
//     dirty pages and marked them clean (fsyncgate), so retrying it would
//     report success for data that is not on disk; only a restart, whose
//     Open recovers from what the files hold, writes again. Reads go on.
//   - The store never modifies the bytes of a raft.Log it is given: Raft
//     shares them with its cache (and the in-memory transport with other
//     replicas). So Data returned from the cache lacks the stamps; Data
//     read from disk has them; nothing may depend on either.
//
// # Lock order
//
// Store.mu is the only lock; it is held across the segment log's
// Append, Sync, Read and TruncateTo and across Options.OnTruncate. Behind
// a partition replica (partition.StoreLog) Append and TruncateTo take the
// replica's writer lock: Store.mu, then the replica's lock, then the
// log's.
//
// # Non-obvious
//
//   - IsMonotonic is true: after a snapshot install Raft deletes every
//     entry instead of leaving a gap. The FSM's Restore (raftgroup), which
//     truncates the segment log to the prefix it shares with the leader and
//     appends the leader's batches up to the snapshot, calls Reset first so
//     that the store is empty (Raft's DeleteRange then removes nothing) and
//     the next entry goes at the new log end.
//   - A partition written before replication existed opens with an empty
//     store: its batches sit below the Raft window, committed by fiat.
package raftlog
