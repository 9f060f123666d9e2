// Package sharestate is the durable state of share groups' partitions
// (KIP-932): for each share-partition (a share group's view of one topic
// partition) its start offset and the delivery state of its in-flight
// records, kept by the share coordinator in the internal compacted topic
// __share_group_state so that it survives restarts and moves with
// leadership.
//
// The data partition's leader holds the live share-partition (which
// records are acquired, by whom, until when: package consumergroup/share)
// and writes every durable change here through the Persister before it
// answers the client. The share coordinator of a key is the leader of
// __share_group_state partition hash(key) mod N; Persister hides whether
// that is this node or another (the Kafka RPCs InitializeShareGroupState,
// ReadShareGroupState, WriteShareGroupState, DeleteShareGroupState and
// ReadShareGroupStateSummary between nodes).
//
// It does not own membership, assignment or group configs (package
// consumergroup), nor acquisition, locks and redelivery (package
// consumergroup/share).
//
// # Pieces
//
//	share-partition leader (any node)          share coordinator (leader of
//	  │ Persister = Router                      __share_group_state-p)
//	  │   Leader(key) == this node? ──yes──▶ Coordinator.XxxShareGroupState
//	  │   no: Peers.Request(node, kmsg) ──TCP──▶ wire 83-87 ──▶ the same
//	  │   NOT_COORDINATOR, LOAD_IN_PROGRESS,        │ begin: check, append a
//	  │   transport error: backoff, retry           │   snapshot record (mu)
//	  ▼   until ctx ends                            ▼ wait: commit (acks=all)
//
// Coordinator follows the coordinator pattern of package consumergroup
// (read its doc first), as package consumergroup/txn does: every node
// runs one; it answers only for the keys of the __share_group_state
// partitions it leads, checking leadership lazily on each request
// (NOT_COORDINATOR elsewhere, COORDINATOR_LOAD_IN_PROGRESS while it
// rebuilds a partition it came to lead by reading it from its log start
// to its high watermark). The topic is created at start
// (Config.StateTopicPartitions, default 16, replication factor capped at
// the live nodes, cleanup.policy=compact). A key's partition is Kafka's:
// abs(javaHashCode("group:topicId:partition")) mod N, the topic id in
// Kafka's text form (CoordinatorKey, PartitionFor).
//
// Router is the Persister every node hands to its share-partition
// leaders (cmd/sluice: sharestate.NewRouter(coordinator, peers, ...)): it
// calls the local Coordinator directly, or sends the request to the
// coordinator through Peers (a kgo client per peer, kept), and retries
// coordinator errors, REQUEST_TIMED_OUT and transport failures with
// backoff (10 ms doubling to 500 ms) until ctx ends. One request to
// another node gets at most 5 s (RouterOptions.AttemptTimeout): a frozen
// or cut-off coordinator is given up on and the key's coordinator looked
// up again, as leadership moves away from it. Errors wrap the
// kerr value: errors.Is(err, kerr.FencedStateEpoch).
//
// # Fencing and the state machine of a key
//
//	            Initialize(e > stored)                 Write(e, l >= L)
//	┌─────────────┐ ─────────────────▶ ┌───────────────────────┐ ◀──┐
//	│ none        │                    │ state epoch e,        │ ───┘
//	│ (epoch -1)  │ ◀───────────────── │ leader epoch L, start │
//	└─────────────┘   Delete (tomb-    └───────────────────────┘
//	                  stone)             Read(l > L) stores L = l
//
// The rules:
//
//   - StateEpoch: Initialize sets a new, higher state epoch (an
//     administrative reset or delete does too); a Write carrying another
//     state epoch, or on a key with no state, is FENCED_STATE_EPOCH, and
//     the writer reloads. Repeating the initialization that is stored
//     (same epoch and start, no batches yet) succeeds without a record,
//     so a retried Initialize is harmless.
//   - LeaderEpoch: Read and Write carry the data partition leader's epoch;
//     one older than the stored one is FENCED_LEADER_EPOCH, so a deposed
//     leader cannot overwrite its successor's state. A Read with a newer
//     epoch stores it (a record) before answering; -1 neither fences nor
//     is stored. Initialize keeps the stored leader epoch.
//   - Write: its batches replace the states of their offset ranges
//     (splitting stored batches they cut); a start offset other than -1
//     replaces the start, dropping batches that end before it and
//     cutting one across it; then batches that say only "available,
//     never delivered" (any offset no batch covers) are dropped and equal
//     neighbours joined. Acquired (1) is never stored: INVALID_REQUEST.
//   - ReadSummary fences no one and stores nothing.
//
// Every operation is idempotent, so the Router may retry one that landed.
//
// # Records in __share_group_state
//
// One record per change: key (group, topic id, partition), value the
// whole State (records.go has the byte layout); a null value is a
// tombstone. The last record of a key wins on load.
//
// # Invariants
//
//   - A record is appended only while this node leads the key's partition
//     in the epoch its keys were loaded in, under Coordinator.mu, so the
//     log holds changes in the order they were made in memory; the
//     in-memory state of a key is the state as of its last appended
//     record.
//   - No answer shows a state that is not committed: an operation that
//     writes answers after its record's commit; one that does not waits
//     for the commit of the key's last appended record (Raft commits in
//     order, so everything before it is committed too).
//   - A record whose commit is not confirmed (leadership lost, timeout)
//     may still land: the partition is then dropped and reloaded from the
//     log on the next request, so memory never disagrees with it.
//   - The wire handlers begin a request's operations on the connection's
//     reader goroutine and wait in reply.finish: a peer's pipelined
//     writes apply in the order sent and their commits overlap.
//
// # Locking
//
// One mutex, Coordinator.mu, guards ownership and every key. It is never
// held while waiting for a commit; one goroutine per appended record
// (counted in Coordinator.wg, ended by Close) waits for it and publishes
// the outcome on the record's commit channel.
//
// # Glossary
//
//   - share-partition: a share group's view of one topic partition.
//   - SPSO: share-partition start offset (State.StartOffset); every
//     record before it is complete.
//   - state epoch: the generation of a share-partition's state, bumped by
//     each (re)initialization.
//   - leader epoch: the data partition's leader epoch of the last Read or
//     Write.
//
// # Non-obvious
//
//   - A snapshot per write, not Kafka's ShareSnapshot + ShareUpdate
//     deltas: a state is 22 bytes plus 19 per batch, the writer keeps
//     batches few (equal neighbours join, settled runs fall behind the
//     start offset), and a share-partition holds a bounded number of
//     in-flight records (Kafka's group.share.partition.max.record.locks,
//     plus the rest of the stored batch crossing it, up to 8 times it);
//     compaction keeps one record per key and a load reads one per key.
//     BenchmarkWriteStateSnapshot (merge plus encode per write, 2-core
//     test machine): 10 batches 0.4 µs and 212 bytes, 100 batches 8 µs
//     and 1.9 KB, 2000 batches (every record in its own state) 89 µs and
//     38 KB, against about 1.3 ms for a write's round trip and commit on
//     a three-node cluster (TestClusterShareStateFailover logs it).
//     Revisit with deltas if states of thousands of distinct batches
//     show up in practice.
//   - The record format is Sluice's own (kmsg has no type for Kafka's
//     share coordinator records), so Kafka's tools do not decode it.
//   - 16 partitions, not Kafka's 50, for the reason package
//     consumergroup/txn gives (each is a Raft group opened at start).
//     Measured on the 2-core test machine, a fresh single node was
//     listening after 0.31-0.33 s with 1 partition and 0.37-0.38 s with
//     16 (the topic is created at start even if no share group is ever
//     used, as __transaction_state is).
//   - WriteShareGroupState v1's DeliveryCompleteCount is not stored: the
//     summary (ReadShareGroupStateSummary v1) computes it from the
//     batches.
//   - FindCoordinator key type 2 (share) is answered (FindCoordinator),
//     for Kafka's tools and brokers; Sluice's nodes do not send it: the
//     Router finds a key's coordinator in its own cluster view, one round
//     trip fewer.
package sharestate
