// Package replication owns the cluster: which brokers exist, which topics
// exist with their ids, partition counts and config overrides, where each
// partition's replica lives and who leads it, the handle through which the
// layers above append to and read a partition, and the allocation of
// producer ids.
//
// Today Sluice runs as a single node: this node holds and leads every
// replica, and the cluster metadata is one file written atomically
// (metadata.go). The metadata Raft group and one Raft group per partition
// replace that storage and that leadership in a later step, behind the same
// Cluster and Partition types, so the layers above do not change.
//
// # Replication: where it stands and what was decided
//
// The pieces of the cluster are built and tested in sub-packages; the
// Cluster and Partition types below do not use them yet (the next step
// wires them in, with the end-to-end tests of issue 7):
//
//	meta/       the metadata Raft group: State, commands, FSM, formation,
//	            join/leave, placement, migration from cluster.json
//	raftlog/    a partition's raft.LogStore: the segment log itself
//	raftgroup/  a partition's Raft group: Prepare on the leader, one entry
//	            per batch, apply of stored batches, barrier on election
//	transport/  one multiplexed connection set per peer for every group
//
// Where a partition's Raft log lives: in its segment log (raftlog's doc
// has the design). Measured on this 2-core machine (BenchmarkStoreLogs,
// one partition, 8 x 16 KiB batches per fsync): the segment store writes
// 1.03 bytes to disk per byte stored at 54 MB/s; raft-boltdb plus a copy
// into the segments writes 2.8 bytes per byte at 18 MB/s (3.1x slower).
// Raft's own entries (elections, membership) live in a small sidecar
// synced only when written, so offsets stay dense and no fetch filters
// them.
//
// acks=1 is committed by a majority, as acks=all: the leader stores a
// batch before it commits, but it is neither visible nor acknowledged
// until the commit index passes it. min.insync.replicas then only decides
// whether a produce is refused up front (NOT_ENOUGH_REPLICAS) when too few
// replicas are in sync.
//
// # What it owns, file by file
//
//	cluster.go       Cluster: Open, Close, brokers, producer ids
//	topic.go         topic lifecycle: create, delete, add partitions, lookups
//	partition.go     Partition, the handle of one partition (below)
//	metadata.go      cluster.json: format, load, atomic save
//	alterconfigs.go  topic config changes: validate, persist, apply to replicas
//	brokerconfig.go  dynamic broker config changes, the same way
//	cleanup.go       what the cleaner cleans (every replica, listed per pass)
//	stats.go         what metrics read of a partition (log size, timestamps)
//
// Two sub-packages hold what is not about the cluster itself:
//
//	configs/  Kafka's topic and broker config tables, validation, resolution
//	          across layers, DescribeConfigs entries (stateless)
//	cleaner/  the retention and compaction schedule and its goroutines
//
// # What it does not own
//
// The bytes of a partition (package partition and log), the Kafka protocol
// (package wire), consumer groups (package consumergroup). Those layers
// depend on interfaces they declare (wire.Cluster, wire.Partition,
// consumergroup.Cluster, ...); *Cluster, *Topic and *Partition satisfy
// them, and cmd/sluice asserts it at compile time.
//
// # The partition handle
//
// A Partition holds its replica unexported: the layers above can append,
// read, wait for data, list offsets and epochs and delete records, but not
// close, delete, truncate or reconfigure it, nor set its leader epoch.
// Append is two steps so that order and commit can be separated:
//
//	Append(ctx, batches) -> Appended   the leader step: validate, check
//	                                   producer sequences, fix the place
//	                                   (today: the local append)
//	Appended.Wait(ctx)                 the batches are committed (today:
//	                                   durable on this node; with Raft:
//	                                   committed by a majority)
//
// acks=1 and acks=all both wait for commit; acks=0 does not wait. A
// connection appends its pipelined requests in order on its reader and
// waits on its writer; the group coordinator appends under its lock and
// waits outside it.
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
// # Config changes
//
// A change — a topic's overrides or a dynamic broker config — is validated
// whole (package configs), persisted, then applied to the live replicas
// with SetConfig and, for the broker, to the cleaner's schedule; the Topic
// value is replaced, never modified.
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
//   - A *Topic is immutable; readers holding one see a consistent snapshot.
//   - Close stops the cleaner (and waits for it) before closing any
//     replica.
//
// # Locking
//
// Cluster.mu guards the topic map and the persisted state. Metadata reads
// take it shared; create, delete and partition changes take it exclusively
// and hold it while opening or deleting replicas. Never call into a replica
// while holding mu except to open, close or delete it, or to SetConfig it
// (which does no I/O).
//
// Lock order: Cluster.mu, then a replica's own locks (open, close, delete,
// SetConfig) or cleaner.Cleaner's (SetConfig). The cleaner lists targets
// under mu shared and calls replicas after releasing it, so Close waits for
// it with mu released.
//
// # Glossary
//
//   - PID: producer id, handed to idempotent producers by InitProducerId.
//   - topic id: the 16-byte UUID Kafka 2.8+ clients use in place of names
//     (Metadata v10+, Fetch v13+).
//   - commit: an append is committed once Appended.Wait would return nil:
//     it is below the high watermark and consumers see it.
//
// # Non-obvious
//
//   - Append returns where the batches land before they are committed; the
//     offsets are final once Wait returns nil (with Raft, the leader's
//     projected offsets are what apply assigns if the entry commits).
//   - Go has no covariant method results: the layers above take
//     ClusterOf[*Topic, *Partition] and view it through their own
//     interfaces (see wire.ClusterOf).
package replication
