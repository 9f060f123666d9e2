// Package replication owns the cluster: which brokers exist, which topics
// exist with their ids, partition counts and config overrides, where each
// partition's replica lives, and the allocation of producer ids.
//
// Today Sluice runs as a single node and this package keeps the cluster
// metadata in one file written atomically; the metadata Raft group and one
// Raft group per partition replace that storage in a later step, behind the
// same Cluster and Partition types, so the wire layer does not change.
//
// # What it does not own
//
// The bytes of a partition (package partition and log), the Kafka protocol
// (package wire), consumer groups (package consumergroup).
//
// # On disk
//
//	<data.dir>/
//	  meta/cluster.json           cluster id, producer id block, topics with
//	                              their config overrides, dynamic broker configs
//	  topics/<topic>-<partition>/ one partition replica (see package log)
//
// cluster.json is replaced whole on every change: written to a temporary
// file, fsynced, renamed over the old one, and the directory fsynced. A crash
// leaves either the old or the new file, never a mix.
//
// cluster.json's dynamic broker configs (default_broker_configs,
// broker_configs by node id) are optional fields: files written before
// they existed load unchanged, and a stored config this version does not
// accept is dropped with a warning rather than stopping the broker.
//
// # Configs
//
//	topic override  >  dynamic broker (this node > cluster default)  >  static  >  default
//	(retention.ms)     (log.retention.ms > .minutes > .hours, merged)    (file)     (Kafka's)
//
// A topic's partition config is the effective broker defaults with the
// topic's overrides applied (partitionConfig). Any change — a topic's
// overrides or a dynamic broker config — is validated whole, persisted,
// then applied to the live replicas with SetConfig; the Topic value is
// replaced, never modified.
//
// # Background work
//
// Open starts two goroutines, stopped and waited for by Close before any
// replica is closed: retention (every log.retention.check.interval.ms,
// EnforceRetention on every replica) and the cleaner (every
// log.cleaner.backoff.ms while log.cleaner.enable, Compact on each
// partition whose policy includes compact, one at a time). Each waits on
// one timer and on a wake channel that a schedule change signals. They
// list topics under mu.RLock and call replicas without it.
//
// # Invariants
//
//   - A topic is in cluster.json before any of its partition directories is
//     used, and is removed from it before its directories are deleted; on
//     Open, a partition directory with no topic is a leftover of an
//     interrupted delete and is removed.
//   - Producer ids are handed out from a block recorded in cluster.json
//     before any id of the block is returned, so ids never repeat across
//     restarts (unused ids of a block are skipped).
//
// # Locking
//
// Cluster.mu guards the topic map and the persisted state. Metadata reads
// take it shared; create, delete and partition changes take it exclusively
// and hold it while opening or deleting replicas. Never call into a replica
// while holding mu except to open, close or delete it, or to SetConfig it
// (which does no I/O).
//
// # Glossary
//
//   - PID: producer id, handed to idempotent producers by InitProducerId.
//   - topic id: the 16-byte UUID Kafka 2.8+ clients use in place of names
//     (Metadata v10+, Fetch v13+).
//
// # Non-obvious
//
//   - Topic configs use Kafka's names. Some (flush.ms, preallocate,
//     segment.jitter.ms, ...) are accepted and validated for compatibility
//     but have no effect; DescribeConfigs documents that. Ones that would
//     mislead (remote.storage.enable=true) are INVALID_CONFIG.
//   - Any dynamic retention setting wins over the static one: the static
//     config holds only the resolved duration, not which of
//     log.retention.ms/minutes/hours set it. Kafka would let a static
//     log.retention.ms win over a dynamic log.retention.hours.
//   - message.timestamp.difference.max.ms (deprecated, KIP-937) sets both
//     before.max and after.max, as in Kafka 3.6+; the specific configs win
//     over it because overrides are applied in table order.
//   - Changing a schedule restarts its timer: the next pass is one new
//     interval after the change.
package replication
