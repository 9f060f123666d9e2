// Package consumergroup is Sluice's group coordinator: Kafka's classic
// consumer group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup),
// share group membership (ShareGroupHeartbeat, ShareGroupDescribe:
// KIP-932),
// committed offsets (OffsetCommit, OffsetFetch, OffsetDelete) and group
// administration (FindCoordinator, ListGroups, DescribeGroups,
// DeleteGroups). Assignment strategies (range, round-robin, sticky,
// cooperative-sticky) are the clients' business: the coordinator only
// picks the protocol every member supports and relays the leader's
// assignment.
//
// It does not own storage: offsets and group metadata are records in the
// internal compacted topic __consumer_offsets, appended through the
// cluster's partition handles like any data (seen through the Cluster,
// Topic and Partition interfaces of cluster.go, which *replication.Cluster
// satisfies), so they are durable, survive restarts and
// (with replication) move with partition leadership. The coordinator of
// group G is the leader of partition abs(javaHashCode(G)) mod N, as in
// Kafka; on a single node that is always this node.
//
// # Following leadership
//
// Every node runs a Coordinator, which answers only for the groups of the
// __consumer_offsets partitions it leads. Each request naming a group
// checks, under Coordinator.mu, the partition's leader and leader epoch
// (Partition.Leader) against what is loaded (coordinatorLocked):
//
//	leader elsewhere, or none   NOT_COORDINATOR; what was held of the
//	                            partition is dropped (members waiting in
//	                            JoinGroup/SyncGroup hear NOT_COORDINATOR)
//	here, epoch loaded          served
//	here, another epoch         drop what was held, start a load;
//	                            COORDINATOR_LOAD_IN_PROGRESS until it ends
//
// A load reads the partition from its log start to its high watermark,
// which on a leader covers every committed record (a partition leader
// serves only after a barrier in its term), into groups of its own, and
// installs them only if this node still leads in the epoch it loaded.
// Timers (session, rebalance, pending member, offset expiry) make the same
// check before acting, so a node that lost leadership stops acting on its
// groups at once even when no request comes. FindCoordinator names the
// partition's leader (COORDINATOR_NOT_AVAILABLE when none is known). The
// check is lazy, with no notification from the cluster: nothing runs per
// partition while no request or timer needs it.
//
// The transaction coordinator (consumergroup/txn) and the share
// coordinator (consumergroup/sharestate) follow their internal topics'
// leadership the same way, through the pieces exported here for them:
// PartitionLoad (the table above, per partition), LoadLed (the loads at
// start), ReplayLog (a load),
// AnswerFindCoordinator (the FindCoordinator answer) and
// EnsureInternalTopic (the compacted topic's creation at start).
//
// # State machine
//
//	              join (first member)
//	┌───────┐ ───────────────────────▶ ┌────────────────────┐
//	│ Empty │                          │ PreparingRebalance │◀──────────┐
//	└───────┘ ◀─────────────────────── └────────────────────┘           │
//	    ▲      all members gone              │ every member joined,     │
//	    │                                    │ or rebalance timeout     │
//	    │                                    ▼ (laggards removed)       │
//	    │                          ┌─────────────────────┐  join/leave/ │
//	    │                          │ CompletingRebalance │──expiry──────┤
//	    │                          └─────────────────────┘              │
//	    │                                    │ leader's SyncGroup,      │
//	    │                                    ▼ assignment stored        │
//	    │   last member leaves     ┌────────┐                           │
//	    └───────────(via)──────────│ Stable │──join/leave/expiry────────┘
//	                               └────────┘
//
// Dead is a deleted group. Each completed join phase is a new generation.
//
// # Records in __consumer_offsets
//
// Kafka's formats, via kmsg: OffsetCommitKey v1 / OffsetCommitValue v3 for
// each committed offset, GroupMetadataKey v2 / GroupMetadataValue v3 for a
// group's generation, protocol, leader and members with their assignments
// (written when a generation's assignment is known, and when a generation
// ends empty). A null value is a tombstone. New replays a partition from
// its log start to its high watermark to rebuild state; a group stored with
// members comes back Stable, and each member must heartbeat within its
// session timeout, as after a Kafka coordinator failover.
//
// # Other coordinators on this pattern
//
// Package consumergroup/txn (transactions, __transaction_state) and
// package consumergroup/sharestate (share groups' delivery state,
// __share_group_state, KIP-932) follow the same pattern with their own
// internal compacted topics, created at start: the coordinator of a key
// is the leader of partition abs(javaHashCode(key)) mod N (PartitionFor),
// a node answers only for the partitions it leads, checking leadership
// lazily, and rebuilds a partition's state by reading it when it comes to
// lead it (COORDINATOR_LOAD_IN_PROGRESS meanwhile). They take the same
// ClusterOf as New (ViewCluster).
//
// # Offsets in transactions
//
// TxnOffsetCommit (KIP-98, KIP-447) appends a transactional batch of the
// producer, verified (KIP-890): before calling, the wire layer has the
// group's partition hand out a verification guard for the producer and
// the transaction coordinator confirm that the partition is in the
// producer's ongoing transaction (VerifyOnly before v5, transaction
// version 1; an add from v5); the append presents the guard, which the
// transaction's marker ends. So a commit sent after its transaction
// ended (EndTxn done, marker written), or overtaken by the marker
// between verification and append, is refused (INVALID_TXN_STATE) with
// nothing stored: it cannot begin a transaction no marker would end,
// which would leave the group's offsets UNSTABLE and the partition's LSO
// stuck. A group the refused commit would have created is dropped
// again. The coordinator keeps the offsets pending per group and
// producer (group.txnOffsets) from the append on: invisible to OffsetFetch,
// DescribeGroups and lag, UNSTABLE_OFFSET_COMMIT to an OffsetFetch with
// RequireStable. The transaction coordinator has the partition leader
// write the producer's marker in the group's partition; once it is
// committed, wire calls CompleteTransaction: COMMIT moves the producer's
// pending offsets of that partition's groups to committed (unless a later
// record of the same partition was applied: log offsets decide, as for
// OffsetCommit), ABORT drops them. A load does the same from the log:
// records of a transactional batch are pending until their producer's
// control batch in the partition, and those still open at the end stay
// pending. A marker committed while the partition loads is noted
// (ownership.completions) and applied at install. Deleting an offset
// (OffsetDelete, DeleteGroups) drops its pending transactional offsets
// too, and a reload drops them at the tombstone, so a later COMMIT brings
// nothing back. A group with pending transactional offsets does not
// expire.
//
// # Share groups
//
// Share groups (KIP-932) live in the same coordinator, under the same
// rules: the group's __consumer_offsets partition decides its
// coordinator, and Coordinator.mu guards them (share_*.go). A group id
// names a classic group or a share group, never both: ShareGroupHeartbeat
// and ShareGroupDescribe on a classic group's id answer GROUP_ID_NOT_FOUND,
// and so do JoinGroup, OffsetCommit and TxnOffsetCommit on a share
// group's id, as Kafka's coordinator does; DescribeGroups (v5 and below) shows a
// share group as Dead, as Kafka does for groups that are not classic.
//
// Membership follows KIP-848's model without revocation: the member id is
// the client's; epoch 0 joins, -1 leaves, any other epoch must be the
// member's current or previous one (FENCED_MEMBER_EPOCH otherwise). The
// group epoch grows when a member joins, leaves or expires
// (share.session.timeout.ms, else group.share.session.timeout.ms),
// changes its subscription, or a subscribed topic's id or partition count
// changes (checked on every heartbeat); the target assignment is
// recomputed then (assignShare: every partition of a subscribed topic to
// at least one member, balanced, several members per partition when
// there are more members than partitions, and sticky: members keep what
// they hold where balance allows, share_assign.go) and each member gets it, with
// the group epoch as its member epoch, on its own next heartbeat; a full
// heartbeat (one with SubscribedTopicNames) always gets it. There is no
// revocation phase: a share-partition hands out records one acquisition
// at a time, so two members may consume a partition at once.
//
//	share group record (share_storage.go): key type 11 + group id;
//	value: epoch, creation time, topics ever assigned (id, name,
//	partition count). Written, durable before the heartbeat's answer,
//	whenever the group epoch changes; a tombstone on delete.
//
// Members are not stored: after a load (restart or failover) a share group
// comes back Empty with its epoch, and members, answered UNKNOWN_MEMBER_ID,
// join again with epoch 0 and get a higher epoch, as in Kafka 4.1.
// DeleteGroups on an empty share group deletes the share-partition state
// of every partition of every topic ever assigned (Options.SharePersister;
// none when nil) before the group's tombstone.
//
// DescribeShareGroupOffsets reads each share-partition's start offset
// from its state (Persister.ReadSummary) and, from v1 (KIP-1226), its lag:
// the partition's high watermark (ShareEndOffsets, an optional capability
// of the state store: the leader's, over ListOffsets when it is another
// node) minus the start offset minus the summary's
// DeliveryCompleteCount; with no topics named, of every
// partition of every topic the group was ever assigned (the topics kept
// in the group's record). AlterShareGroupOffsets and
// DeleteShareGroupOffsets need the group empty (NON_EMPTY_GROUP, as in
// Kafka): alter initializes each named state again at the new offset with
// a state epoch one above the stored one, which fences the live
// share-partition on the data partition's leader (its next write is
// FENCED_STATE_EPOCH and it reloads); delete removes the states and the
// topic from the group's record. Alter creates the group if it does not
// exist, as Kafka does. The state store is called without
// Coordinator.mu, for up to 16 share-partitions at once.
//
// # Invariants
//
//   - A record is appended only while this node leads the group's
//     partition in the epoch its groups were loaded in (appendLocked
//     checks, else NOT_COORDINATOR): state read in one epoch is not
//     written in another.
//   - OffsetCommit, DeleteGroups, OffsetDelete and the leader's SyncGroup
//     answer only after their records are durable; an acknowledged commit
//     survives kill -9.
//   - Records are appended while Coordinator.mu is held, so the log holds
//     them in the order of the in-memory changes and a reload rebuilds
//     exactly that state. Only the wait for durability happens without the
//     lock; state is re-checked (same group, same generation) after it.
//   - A committed offset becomes visible once its record is durable; of two
//     commits of one partition the one later in the log wins (logOffset),
//     whichever wait ends first. Deletions apply at once and, while commits
//     are in flight, leave a tombstone offset so an older commit finishing
//     later does not bring the offset back.
//   - Deleting a group also writes tombstones for commits still in flight
//     (pendingCommits): their records precede the tombstones.
//   - A member waiting in JoinGroup or SyncGroup has a channel with room
//     for exactly its one answer; answering never blocks.
//
// # Locking
//
// One mutex, Coordinator.mu, guards every group. Timers (session,
// rebalance, pending member ids, offset expiry) take it and re-check that
// what they were armed for still holds (a sequence number for sessions, the
// generation for rebalances) before acting.
//
// # Stuck partitions
//
// A group is stuck on a partition (a consumer crash-looping on a poison
// record) when its committed offset is below the partition's high
// watermark and either the group went through Config.StuckRebalances
// generations since the offset last moved, or the offset has not moved for
// Config.StuckTimeout while the group has members (stuck.go). Each
// committed offset carries movedAt and movedGeneration, kept by
// applyCommitLocked when a commit repeats the same offset; nothing else is
// done per commit. StuckPartitions is a pure function of Stats, a high
// watermark lookup and the clock; StuckDetector runs it when metrics are
// scraped or the admin endpoint is asked and on a slow timer, and logs each
// change (Warn when stuck, Info when no longer). A load sets
// movedGeneration to the loaded generation (the log does not say which
// generation a commit came from) and movedAt to the commit timestamp of the
// first record of the offset it read. The high watermark is this node's
// view (replication.Partition.Offsets): a partition this node does not
// lead reads 0 and is never stuck, so in a cluster only partitions whose
// leader is also the group's coordinator are judged, as for the lag
// metrics.
//
// # Glossary
//
//   - generation: the number of a completed join phase; commits and
//     heartbeats carry it and are refused from other generations.
//   - group epoch, member epoch: a share group's version of its target
//     assignment, and the version a member last received.
//   - static member: a member with group.instance.id (KIP-345); it may
//     restart and take its place back without a rebalance.
//   - pending member: an id handed out with MEMBER_ID_REQUIRED (KIP-394)
//     and expected to join again.
//
// # Non-obvious
//
//   - A restarted static member skips the rebalance when the group's chosen
//     protocol stays the same, not when its metadata is byte-identical:
//     sticky assignors embed the partitions a member owned, which a restarted
//     client no longer knows.
//   - Commits with generation -1 and no member id (admin tools, consumers
//     assigning partitions themselves) are accepted only while the group has
//     no members, as in Kafka; `sluice group reset-offsets` relies on it.
//   - The group's partition uses Kafka's Utils.abs (MinInt32 -> 0, else
//     Math.abs), not the producer's toPositive (n & 0x7fffffff): they differ
//     for every negative hash.
//   - An empty initial rebalance delay is extended while members keep
//     joining, up to the rebalance timeout (Kafka's InitialDelayedJoin).
//   - On a node that does not yet serve a partition it was elected for
//     (before its barrier), Leader may already name this node: the load's
//     first Read answers NOT_LEADER_OR_FOLLOWER and the load is abandoned;
//     the next request starts another. A load never installs state read
//     from a partition this node did not serve.
//   - OffsetCommit checks that the committed topic partition exists in the
//     metadata, not that this node holds a replica of it: the coordinator
//     of a group is rarely the leader of the partitions it consumes.
//   - Between the epoch check in appendLocked and the proposal, this node
//     could lose and regain leadership (a new election, microseconds
//     apart): the record then lands in the new epoch from old state. No
//     election is that fast; the partition's Append does not take an
//     expected epoch to close the gap for good.
//   - The guard of a TxnOffsetCommit is the partition's, in leader
//     memory: the coordinator's records are not in the partition's
//     in-flight forecast, so a producer's transaction counts as under way
//     there (no verification) only once its first commit applied, and
//     that commit's guard stays in force until the marker, for a second
//     commit verified with the same guard meanwhile.
//   - CompleteTransaction does not compare producer epochs: a marker ends
//     whatever its producer had pending in the partition, as in Kafka.
//     Applying a marker the load already read changes nothing: a producer
//     has nothing pending after its marker until this node appends for it
//     again, which it does only once loaded.
//   - Kafka's cleaner must drop an aborted transaction's offset records
//     before compacting by key, or a compacted reload would see an
//     aborted offset as the latest record of its key; the partition's
//     cleaner (partition/compact.go) owns that rule.
//   - JoinGroup needs the client id and host for DescribeGroups; the
//     request body lacks them, so the wire layer passes them in the context
//     (WithClient).
package consumergroup
