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
//	  meta/cluster.json           cluster id, node id, producer id block, topics
//	  topics/<topic>-<partition>/ one partition replica (see package log)
//
// cluster.json is replaced whole on every change: written to a temporary
// file, fsynced, renamed over the old one, and the directory fsynced. A crash
// leaves either the old or the new file, never a mix.
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
// while holding mu except to open, close or delete it.
//
// # Glossary
//
//   - PID: producer id, handed to idempotent producers by InitProducerId.
//   - topic id: the 16-byte UUID Kafka 2.8+ clients use in place of names
//     (Metadata v10+, Fetch v13+).
//
// # Non-obvious
//
//   - Topic configs use Kafka's names. Configs whose behaviour arrives with
//     retention and compaction (retention.ms, cleanup.policy, ...) are
//     validated and stored now and reported by DescribeConfigs, so tools that
//     set them at creation keep working; the cleaner enforces them.
package replication
