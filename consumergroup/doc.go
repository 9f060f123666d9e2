// Package consumergroup is the group coordinator: Kafka's classic consumer
// group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), committed
// offsets (OffsetCommit, OffsetFetch, OffsetDelete), group administration
// (ListGroups, DescribeGroups, DeleteGroups) and FindCoordinator.
//
// # Ownership
//
// A Coordinator owns the groups of every __consumer_offsets partition this
// node leads (on a single node: all of them), their membership state
// machines, timers and committed offsets, and the records it writes to
// __consumer_offsets. It does not own the topic's storage (package
// replication and partition: it appends record batches and waits for them
// to commit like any producer), the wire protocol (package wire decodes
// requests and encodes the responses built here) or the assignment of
// partitions to members, which the group leader (a client) computes: range,
// round-robin, sticky and cooperative-sticky (KIP-429) all run on the
// classic semantics unchanged.
//
// # States
//
//	                  +------------------ last member leaves / expires ----------------+
//	                  v                                                                |
//	+-------+  join   +--------------------+  all rejoined or   +---------------------+ leader's  +--------+
//	| Empty |-------->| PreparingRebalance |------------------->| CompletingRebalance |---------->| Stable |
//	+-------+         +--------------------+  rebalance timeout +---------------------+ SyncGroup +--------+
//	    |                 ^    ^     | no member left              |                               |
//	    |                 |    |     v                             | join with new metadata,       |
//	    |                 |    |  (Empty, generation+1)            | leave, expiry, no sync        |
//	    |                 |    +-----------------------------------+                               |
//	    |                 +--------------------- join (leader / new metadata), leave, expiry ------+
//	    |
//	    +-- DeleteGroups, offsets expired --> Dead (forgotten)
//
// Every completed join phase increments the generation. An Empty group's
// first join waits InitialRebalanceDelay, extended while members keep
// joining, up to the rebalance timeout (Kafka's InitialDelayedJoin).
// Members that do not rejoin within the rebalance timeout (the largest of
// the members') are removed; so are members that do not send SyncGroup
// within it after the join (Kafka 3.2's pending sync).
//
// # Records in __consumer_offsets
//
// The group's partition is abs(javaHashCode(group)) mod partitions, as
// Kafka, so Kafka tools agree on the placement. Records are Kafka's own:
//
//	key (int16 version first)            value (int16 version first, null = tombstone)
//	v1 OffsetCommitKey                    v3 OffsetCommitValue
//	   group, topic, partition               offset, leader epoch, metadata, commit time
//	v2 GroupMetadataKey                   v3 GroupMetadataValue
//	   group                                 protocol type, generation, protocol, leader,
//	                                         state time, members{id, instance id, client id,
//	                                         host, timeouts, subscription, assignment}
//
// Every write is ONE uncompressed magic-2 batch (producer id -1) appended
// to the group's partition; requests are answered after WaitCommitted, so
// an acknowledged commit survives kill -9. Group metadata is written when
// the leader's assignment arrives (before anyone receives it), when a
// static member is replaced in a Stable group and when a generation ends
// Empty. Loading replays each partition from log start to high watermark
// in order, later records winning and tombstones deleting.
//
// # Invariants
//
//   - A member blocked in JoinGroup has join != nil, one blocked in
//     SyncGroup sync != nil; each channel is buffered and receives exactly
//     one send, after which the field is nil. Such members are never
//     expired (Kafka's shouldKeepAlive).
//   - Records of a group are appended with the group's lock held, so the
//     log's order is the order of the in-memory changes; a committed offset
//     is applied to memory only once its batch is committed, and of two
//     records for one partition the one at the higher log offset wins.
//   - A timer acts only if the sequence number it captured is still
//     current (rebalanceSeq, heartbeatSeq) and takes the group's lock:
//     timers hand work to the group, never touch it unlocked.
//   - Every goroutine, timer callback and request in progress is counted
//     in Coordinator.wg; Close waits for all of them.
//
// # Lock order
//
// group.mu, then Coordinator.mu (the groups map). Coordinator.mu is never
// held while taking a group's lock. Partition locks (Append) are taken
// under group.mu; WaitCommitted is never called with a lock held.
//
// # Glossary
//
//   - Generation: the number of completed join phases of a group; members
//     name it in SyncGroup, Heartbeat and OffsetCommit.
//   - Leader: the member (first to join) that computes the assignment.
//   - Pending member: an id handed out with MEMBER_ID_REQUIRED (KIP-394)
//     whose owner has not rejoined with it yet.
//   - Static member: one with a group.instance.id (KIP-345); restarts keep
//     its assignment without a rebalance.
//   - Rebalance timeout / session timeout: per member, from JoinGroup.
//
// # Non-obvious
//
//   - A static member rejoining a Stable group with a new id is told the
//     previous leader id, so even the leader does not reassign in a Stable
//     group (as Kafka). It rebalances only if the selected protocol or the
//     subscribed topics change: its owned partitions and user data change
//     on every restart, so comparing raw metadata would defeat KIP-345.
//   - SyncGroup during loading answers REBALANCE_IN_PROGRESS and Heartbeat
//     answers NONE, as Kafka; everything else answers
//     COORDINATOR_LOAD_IN_PROGRESS.
//   - Commits during PreparingRebalance are accepted (the heartbeat tells
//     the member about the rebalance); during CompletingRebalance they are
//     REBALANCE_IN_PROGRESS.
//   - A request whose ctx ends while it waits for a commit still has its
//     write applied once it commits (afterCommit), so memory never lags
//     the log.
//   - Deleting a group writes tombstones also for commits still in flight:
//     otherwise the group would come back on the next load.
//   - Java's String.hashCode works on UTF-16 code units and Kafka's
//     Utils.abs maps MinInt32 to 0.
package consumergroup
