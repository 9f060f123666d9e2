// Package raftgroup is one partition's Raft group on this node: the
// partition's replica, its Raft log store (package raftlog: the segment
// log itself) and the hashicorp/raft instance that replicates it. The Raft
// leader is the Kafka partition leader, the Raft term the leader epoch,
// the commit index the high watermark.
//
// # A produce
//
//	leader                                      every replica
//	Append(b)
//	  Prepare(b, term)   validate, sequences
//	                     against applied +
//	                     in-flight state
//	  raft.Apply(batch)  one entry per batch ──► StoreLogs: stamp base
//	  ...                                         offset and term, append
//	                                              to the segment, fsync
//	                     committed by a majority
//	  future done   ◄──  FSM.Apply ────────────► ApplyStored: producer
//	                                              state, epoch cache;
//	                                              high watermark moves
//
// The batch is written once, by the store, before it commits; consumers
// see it only once the high watermark (moved by the FSM on commit) passes
// it. acks=1 and acks=all both return after commit.
//
// # Leadership
//
// A node that wins an election accepts appends only after a barrier in
// its term has applied: every entry of earlier terms is then in the
// producer state, so Prepare recognises any retry and never proposes a
// batch twice (the store cannot take back a stored batch). Losing
// leadership drops Prepare's in-flight forecast. Appends on a node that
// does not lead answer NOT_LEADER_OR_FOLLOWER at once.
//
// # Restart and snapshots
//
// A snapshot is nine bytes: where replay after it starts. Raft takes them
// often (SnapshotThreshold) and keeps TrailingLogs entries behind them;
// the data stays in the segments for Kafka's retention. On start
// (NoSnapshotRestoreOnStart) Open reads the latest snapshot, makes every
// offset below its replay start visible, and Raft replays the entries
// after it; the replica skips those its producer state already holds
// (it rebuilt that state to the log end on Open). A log conflict that
// truncates the segment log makes the replica rebuild that state.
//
// Not yet: a replica so far behind that the leader no longer has the
// entries it needs gets a snapshot it cannot use (ErrInstallSnapshot);
// streaming the leader's segments for it is the next step.
//
// # Invariants
//
//   - Entries reach Raft in the order Prepare forecast them (proposeMu).
//   - The high watermark is the offset after the last applied batch; it
//     never passes what a majority stored.
//   - Apply is deterministic: it reads the entry, the replicated log and
//     the producer state, never a clock.
//
// # Lock order
//
// Group.proposeMu, then the replica's lock (Prepare). The store's lock,
// then the replica's (the store's Append and TruncateTo through
// partition.StoreLog, and OnTruncate). Raft's goroutines call the FSM and the
// store; the group's watch goroutine calls raft and the replica.
// Once it leads (the barrier of its term applied) the watch goroutine
// calls Options.OnLead with no lock held; OnLead must not block (package
// replication queues the election for its report to the metadata).
//
// # Goroutines
//
// Open starts raft's own goroutines and one watch goroutine; Close
// transfers leadership if it leads, shuts Raft down and waits for both.
package raftgroup
