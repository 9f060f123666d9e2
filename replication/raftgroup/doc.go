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
// # Failover
//
// A group's Raft timeouts are long (Config: 20s), so idle groups cost
// little; a dead leader is replaced by failover.go instead, when the
// transport is a FailoverTransport (replication/transport's is): its
// failure detector reports a node down, each follower of that node's
// groups ranks the surviving voters by a hash of the group, and the first
// in rank makes its own raft elect at once (TimeoutNow, leadership-
// transfer flag), the next ones FailoverStagger apart if there is still no
// leader. A new group's first election, and an existing one that opens
// with no leader (a whole-cluster restart), go the same way but only after
// a pre-vote that a majority grants: voters that name a live leader refuse
// it, so a restarted node never unseats one. A follower that names no
// leader when its detector reports a voter down (a quicker survivor's
// vote request made it forget the dead leader, and that survivor may lose
// for a shorter log) plans the same pre-vote-gated election in its rank,
// so the group does not wait HeartbeatTimeout. Every election is Raft's own,
// so safety is Raft's; the argument and the timings are in failover.go.
// A leader heartbeats a peer that is back up (or re-dialled) at once. The
// group lets the transport reuse heartbeat answers for 3/10 of
// HeartbeatTimeout (transport's heartbeat_reuse.go), so
// raft.VerifyLeader must not be relied on for partition groups.
//
// # Restart and snapshots
//
// A snapshot is nine bytes: where replay after it starts. Raft takes them
// often (SnapshotThreshold) and keeps TrailingLogs entries behind them;
// the data stays in the segments for Kafka's retention. On start
// (NoSnapshotRestoreOnStart) Open drops a snapshot whose restore did not
// complete (below), reads the latest snapshot, makes every offset below
// its replay start visible, and Raft replays the entries
// after it; the replica skips those its producer state already holds
// (it rebuilt that state to the log end on Open). A log conflict that
// truncates the segment log makes the replica rebuild that state.
//
// # Catching up from the leader's segments
//
// A replica so far behind that the leader's Raft window no longer holds
// the entries it needs gets the leader's snapshot (InstallSnapshot). Its
// restore (FSM.Restore, catchup.go) pulls the missing bytes from the
// leader's segments, as a Kafka follower fetches:
//
//	follower (raft's FSM goroutine)            leader (transport goroutine)
//	snapshot: next offset S, index I
//	bisect: my batch at o == leader's? ──────► ReadLog(o, 1 byte): one batch
//	  keep the shared prefix, truncate the rest (it may be uncommitted)
//	store.Reset(I+1): no entry; every batch in the log is committed
//	loop until the log end is S:
//	  ReadLog(log end, 1 MiB) ───────────────► replica.Read up to its HWM,
//	  append the batches verbatim, sync  ◄────  stored bytes verbatim
//	  (the leader's log start above the log end: restart the log there)
//	rebuild producer state and epochs, high watermark = S
//
// Decision: the snapshot stays nine bytes and Restore pulls, rather than
// streaming the segments inside InstallSnapshot. Raft copies an
// InstallSnapshot's bytes into its snapshot store before Restore reads
// them: the data would be written twice, the sender would have to know
// the size before the first byte, and a broken stream would start over.
// Pulling keeps the leader's side a plain read (the replica's normal read
// path, one 1 MiB chunk at a time), resumes where the last attempt
// stopped, and never sends what the follower holds committed: batches are
// byte-identical on every replica (base offset and epoch are stamped from
// the Raft log), so the shared prefix is found by comparing batches. Any
// replica could answer; the follower asks the leader that sent the
// snapshot.
//
// The leader reports a replica that reads its log out of sync (InSync)
// until its snapshot install is answered (the transport's restored
// handler), or a heartbeat timeout after its last read if it never is:
// heartbeats alone would count it in sync while it is still far behind.
// A replica whose heartbeats fail is out of sync until Raft reports them
// resumed, its replication restarts (removed and added again), or two
// heartbeat timeouts pass with no further failure (insync.go: raft's
// observations may be dropped, and a stopped replication reports
// nothing).
//
// A restore's reads of the leader's log keep the leader's InstallSnapshot
// call waiting (the transport extends it by its Timeout at each read), so
// a long catch-up ends answered, and the leader replicates to the replica
// at once, not at its next new entry or CommitTimeout. A restore that
// fails or stalls fails the call; the leader sends the snapshot again,
// and the next restore resumes from what the first fetched.
//
// Crash safety. Raft writes the snapshot into its store before Restore,
// and on Open raft believes the latest snapshot. So the group's snapshot
// store (pending.go) writes raft-restore.pending, naming the snapshot,
// before an installed snapshot becomes visible (this node's own snapshots
// are not announced: Persist marks their sink). A restore that completes
// removes the file; one that fails removes the snapshot, then the file;
// Open finds a file a crash left, removes the snapshot it names and the
// file. Raft then does not know the snapshot, and the leader sends one
// again; the batches already fetched are committed and stay (a store with
// no entry makes the whole log visible on Open), so the next restore
// resumes after them.
//
// # Storage failure
//
// A write or fsync of the replica's files that fails (the Raft log store
// is then failed for good: raftlog.Store.Failed), or an entry the FSM
// cannot apply, makes the replica leave its group (failure.go): appends
// answer KAFKA_STORAGE_ERROR at once, the watch goroutine hands
// leadership over if this node still leads and shuts its Raft down, so it
// neither leads nor votes until the node restarts; Failed says why. The
// other replicas elect a leader and go on. When the replica led and could
// not hand over (raft steps down by itself when storing its own entries
// fails), it tells the other replicas it left (the transport's
// AnnounceLeaving) before shutting down: its node still answers, so the
// failure detector would never declare it down, and the followers would
// wait for Raft's heartbeat timeout (10-20 s, measured 19.9 s in
// TestStorageFailedDiskLeaderStepsDown); told, they elect at once as for
// a dead node (failover.go; measured 30 ms). Options.Admit refuses appends
// before they reach Raft (the free-space threshold).
//
// # Invariants
//
//   - Entries reach Raft in the order Prepare forecast them (proposeMu).
//   - The high watermark is the offset after the last applied batch; it
//     never passes what a majority stored.
//   - Apply is deterministic: it reads the entry, the replicated log and
//     the producer state, never a clock.
//   - While the Raft log store holds no entry, every batch in the segment
//     log is committed: a restore truncates what may not be before it
//     resets the store, and appends only batches below the leader's high
//     watermark after.
//   - Raft's snapshot store holds at most one snapshot that was not
//     restored, and raft-restore.pending names it, from before it is
//     visible until its restore ends.
//
// # Lock order
//
// Group.proposeMu, then the replica's lock (Prepare). downMu is a leaf
// (the transport's detector takes it through the peer-down handler). The store's lock,
// then the replica's (the store's Append and TruncateTo through
// partition.StoreLog, and OnTruncate). A restore takes the replica's lock
// (append, truncate, restart, rebuild) and the store's (Reset) one at a
// time; snapshotStore.mu is a leaf. Raft's goroutines call the FSM and the
// store; the group's watch goroutine calls raft and the replica.
// Once it leads (the barrier of its term applied) the watch goroutine
// calls Options.OnLead with no lock held; OnLead must not block (package
// replication queues the election for its report to the metadata).
//
// # Goroutines
//
// Open starts raft's own goroutines and one watch goroutine; Close
// transfers leadership if it leads, shuts Raft down and waits for both.
// The watch goroutine also plans and starts failover elections (one timer
// at most); a pre-vote it sends runs one short goroutine per voter, which
// it waits for (at most the transport's timeout).
// A snapshot that applying asks for (snapshot_due.go) runs on a
// goroutine of its own, one at a time, counted in the group's WaitGroup;
// Raft's shutdown ends it.
// A restore runs on raft's FSM goroutine and stops between chunks once
// Raft shuts down; a peer's ReadLog runs on a goroutine of the group's
// transport, which Raft's shutdown closes and waits for.
//
// # Files
//
//	group.go     Open, leadership, Propose (and ProposeMarker,
//	             ProposeAsCoordinator) and Wait, Close
//	fsm.go       the FSM: apply of stored batches, the snapshot format
//	catchup.go   Restore: catching up from the leader's segments; the
//	             leader's side (serveLog)
//	pending.go   the snapshot store and raft-restore.pending
//	failover.go  elections on a dead leader's node, a bootstrap, a restart
//	failure.go   a replica whose storage failed leaves the group and, if it
//	             led, tells its followers
//	snapshot_due.go  snapshots taken as entries apply, not on a timer
//	insync.go    InSync: which replicas the leader counts in sync
//	config.go    Config, Options
//
// # Non-obvious
//
//   - A restarted replica knows only its replay start as committed, though
//     its log may hold more; Restore keeps the part equal to the leader's
//     (bisection with one-batch ReadLogs) instead of fetching it again.
//   - Raft calls Restore only for an install (NoSnapshotRestoreOnStart),
//     after setting the leader from the request: the restore reads from
//     the node that sent the snapshot.
//   - After a failed restore raft still believes its old last index while
//     the store is empty and expects the snapshot's index + 1: an entry
//     offered after the old last index is refused (ErrNotContiguous), so
//     only a snapshot can bring the replica back, never entries at a wrong
//     offset.
//   - The leader's compaction may have removed batches the follower
//     lacks: their offsets are gaps, which the follower's log takes as
//     they are (log.Log.AppendCompacted raises its compacted end so
//     recovery accepts them). The last batch below the snapshot's offset
//     is in the leader's Raft window (TrailingLogs), which compaction
//     leaves alone, so the caught-up log ends exactly there; a leader
//     without it makes the restore fail with a clear error.
//   - A leader's log start inside a batch (DeleteRecords): the follower's
//     log restarts at that batch's base offset, so its log start may be a
//     few offsets below the leader's.
package raftgroup
