// Package txn is Sluice's transaction coordinator (KIP-98): it hands
// transactional producers their producer id and epoch (InitProducerId
// with a transactional id), records the partitions and consumer groups
// of each ongoing transaction (AddPartitionsToTxn, AddOffsetsToTxn),
// commits or aborts it (EndTxn) by having transaction markers written on
// every partition of the transaction, aborts transactions that outlive
// their timeout, expires idle transactional ids, and describes them
// (DescribeTransactions, ListTransactions, FindCoordinator key type 1).
//
// It does not own the markers' effect: partition leaders write them
// (package replication, partition; wire's WriteTxnMarkers), and the group
// coordinator completes the offsets committed in a transaction
// (TxnOffsetCommit) when the marker lands in __consumer_offsets. Markers
// are written through a MarkerWriter the wire layer implements (local
// leaders directly, remote ones with WriteTxnMarkers).
//
// It follows the coordinator pattern of package consumergroup (read its
// doc first): the state is records in the internal compacted topic
// __transaction_state, created at start (StateTopicPartitions, default
// 16, replication factor capped at the live nodes); the coordinator of
// transactional id T is the leader of partition
// abs(javaHashCode(T)) mod N; a node answers only for the partitions it
// leads, lazily checking leadership on each request (NOT_COORDINATOR
// elsewhere, COORDINATOR_LOAD_IN_PROGRESS while it rebuilds a partition
// it came to lead by reading it from its log start to its high
// watermark). The coordinator epoch written in markers is the leader
// epoch of the id's partition, the epoch its state was loaded in.
//
// # State machine (Kafka's TransactionState)
//
//	           InitProducerId
//	  ┌─────────────────────────────┐
//	  ▼                             │
//	┌───────┐ AddPartitions/ ┌─────────┐  EndTxn(commit)  ┌───────────────┐ markers ┌────────────────┐
//	│ Empty │ AddOffsets ──▶ │ Ongoing │ ───────────────▶ │ PrepareCommit │ ──────▶ │ CompleteCommit │
//	└───────┘                └─────────┘                  └───────────────┘ written └────────────────┘
//	    │                     │  │ EndTxn(abort), timeout, ┌──────────────┐ markers ┌───────────────┐
//	    │                     │  └─ InitProducerId ──────▶ │ PrepareAbort │ ──────▶ │ CompleteAbort │
//	    │                     │     (epoch bumped: fence)  └──────────────┘ written └───────────────┘
//	    ▼ expired             ▼
//	  Dead (tombstone)      AddPartitions from Complete*/Empty starts the next transaction
//
// transitionAllowed holds the table (Kafka's validPreviousStates); every
// stored change goes through it. PrepareEpochFence is Kafka's in-memory
// step of a fence; here a fence stores PrepareAbort with the bumped epoch
// directly, and the state is never stored.
//
// # Records in __transaction_state
//
// TxnMetadataKey v0 (transactional id) → TxnMetadataValue v0 (producer
// id, epoch, timeout, state, partitions by topic, last update time,
// transaction start time or -1), or v1 with its tagged fields for a
// transaction ended by a version 2 EndTxn (records.go); a null value
// (tombstone) for an expired id. The last record of an id wins on load. lastProducerID and
// lastProducerEpoch (KIP-360 retries) live only in memory, as in Kafka.
//
// # Invariants
//
//   - A record is appended only while this node leads the id's partition
//     in the epoch its ids were loaded in (persist checks, else
//     NOT_COORDINATOR), under Coordinator.mu, so the log holds changes in
//     the order they were made in memory.
//   - The in-memory state of an id changes only after its record is
//     durable (persist installs the new state after the wait). While the
//     record is awaited the id is pending: its requests answer
//     CONCURRENT_TRANSACTIONS. A record whose wait fails (timeout,
//     leadership lost) may still land: the partition is then dropped and
//     reloaded from the log, so memory never disagrees with it.
//   - EndTxn answers once Prepare* is durable. From then on the
//     transaction's outcome is decided: the markers are written (and
//     retried, with backoff up to 1 s, until written or the coordinator
//     loses the partition) and only then Complete* is stored. A
//     coordinator that loads a partition resends the markers of every
//     transaction it finds in Prepare*: markers are idempotent.
//   - Markers carry the producer epoch of the Prepare* record; a fence
//     (InitProducerId over an ongoing transaction, or a timeout) bumps
//     the epoch in that record, so partitions fence the old producer's
//     later writes.
//
// # Locking
//
// One mutex, Coordinator.mu, guards every id, the ownership table and
// the marker writer. It is released only inside persist, while a record
// is awaited (the id is pending then). Marker senders hold no lock while
// writing markers (which take the group coordinator's lock for
// __consumer_offsets). The timers (timed-out transactions, expired ids)
// take Coordinator.mu and re-check each id after every persist.
//
// # Glossary
//
//   - PID: producer id; epoch: the producer epoch, bumped by each
//     InitProducerId and each fence.
//   - marker: a control batch (COMMIT or ABORT) ending a producer's
//     transaction on one partition.
//   - coordinator epoch: the leader epoch of the __transaction_state
//     partition, carried by markers so a partition refuses those of a
//     deposed coordinator.
//   - fence: an epoch bump that makes a producer instance's requests
//     answer PRODUCER_FENCED (INVALID_PRODUCER_EPOCH for old versions).
//
// # Non-obvious
//
//   - 16 partitions, not Kafka's 50: each is a Raft group opened at
//     every start. Measured on the 2-core test machine, a fresh single
//     node was listening after 0.43-0.76 s with 16 and 1.19-1.25 s with
//     50, a restart after 0.18-0.31 s and 0.40-0.87 s.
//   - A timed-out producer is fenced, as in Kafka: its later EndTxn
//     answers PRODUCER_FENCED, and a KIP-360 InitProducerId with its old
//     epoch too (the fence clears lastProducerEpoch).
//   - AddPartitionsToTxn v4 (from brokers) with VerifyOnly answers
//     INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED, for another epoch:
//     the produce it verifies answers that.
//   - Transaction version 2 (KIP-890 part 2) is chosen per request:
//     EndTxn v5 bumps the epoch (Prepare* stores epoch+1, so markers carry
//     it; the response names it), remembers the epoch before the bump in
//     lastProducerEpoch (stored as ClientTransactionVersion 2 in a
//     TxnMetadataValue v1, so a retry is recognised after a reload too),
//     and at an exhausted epoch hands out a new producer id
//     (nextProducerID in Prepare*, the id itself in Complete*). A v5 end
//     while Prepare* is being completed is the next transaction's:
//     CONCURRENT_TRANSACTIONS. An empty abort (Empty or Complete* to
//     PrepareAbort, no markers) is allowed, as Kafka 4 allows it.
//     Partitions come from brokers (Produce v12, TxnOffsetCommit v5) as
//     AddPartitionsToTxn v5 without VerifyOnly.
package txn
