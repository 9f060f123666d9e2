// Package meta owns the cluster metadata and the metadata Raft group that
// replicates it: which nodes exist (id, Kafka advertised address, Raft
// address, rack, active or leaving), which topics exist (name, 16-byte id,
// internal flag, config overrides, partitions with their replica lists in
// preference order and the leader and epoch their Raft group last
// elected, as leaders report them), the dynamic broker configs (cluster
// default and per node), the client quotas (package quota), and the next
// producer id block.
//
// # What it owns, what it does not
//
// It owns the State, the commands that change it, the FSM that applies
// them, the replica placement function, and the Group that runs the
// metadata raft.Raft on this node (its raft-boltdb store and snapshots).
//
// It does not own what a node does about the metadata: opening, closing or
// deleting its partition replicas, starting per-partition Raft groups,
// moving data on reassignment. The node does that outside Apply, waiting on
// Group.Changed and comparing the new State with what it acted on. It does
// not own the transport (passed in Options), the validation of config
// names and values (package replication/configs, ValidateTopic and
// ValidateBroker; the proposer validates before proposing), nor forwarding a proposal from a follower
// to the leader (Propose returns *NotLeaderError naming the leader).
//
// # The model
//
//	proposer (leader)                      every node
//	-----------------                      ----------
//	s := g.State()                         FSM.Apply(entry):
//	as := s.Place(n, rf)                     cmd := Decode(entry.Data)
//	g.Propose(ctx, &CreateTopic{...}) --->   next, res := state.Apply(index, cmd)
//	  <- Result{Version, Err}                publish(next)   (atomic pointer)
//	                                         -> Changed() closes
//	                                       node reaction (not here):
//	                                         <-g.Changed(); s := g.State()
//	                                         open/close/delete own replicas
//
// A command carries every choice that needs randomness or a view of the
// cluster (topic id, replica assignment, cluster id): the proposer makes
// it, Apply only checks it against the state it applies to. Apply reads no
// clock, no disk, no randomness and no node-local config, so every node
// reaches the same state from the same log. A command that does not fit
// the state (a duplicate name, an unknown topic, a replica on an unknown
// node) is refused by Apply with a *kerr.Error wrapped in a message, in
// Result.Err; the state is unchanged on every node, and the proposer
// returns the error to its client. Apply never panics on a command.
//
// # Formation and membership
//
//   - Every node started with the same Config.InitialMembers (itself
//     included) bootstraps Raft with that configuration; on restart the
//     bootstrap is a no-op (raft.ErrCantBootstrap is ignored). The first
//     leader, after a barrier, proposes InitCluster: the cluster id
//     (Config.ClusterID, else the seed's, else a new one) and every initial
//     member registered active, plus the seed's topics and configs when the
//     data dir came from the single-node version (LoadLegacy). InitCluster
//     succeeds once; a racing second one is refused.
//   - A node joins a running cluster by starting with no initial members
//     and asking the leader for Group.Join with its ClusterID ("" for a
//     fresh data dir): RegisterNode refuses another cluster's id
//     (INCONSISTENT_CLUSTER_ID) and a node id or Raft address already in
//     use (DUPLICATE_BROKER_REGISTRATION), then the node is added as a
//     Raft voter. Joining again with the same id and address is a no-op.
//   - A node leaves with Leave (MarkNodeLeaving: placement skips it), then
//     its replicas are moved (AlterReassignment), then Remove (RemoveNode,
//     refused while it holds a replica, then Raft RemoveServer).
//
// # Reassignment
//
// AlterReassignment records a partition's target replicas as Kafka does:
// Replicas become target ++ (original - target), Adding = target -
// original, Removing = original - target, so every node involved holds a
// replica meanwhile (Assigned includes them). The partition's Raft leader
// moves the data (package replication) and CompleteReassignment sets
// Replicas to the target once the Raft group's voters are exactly it. A
// nil target cancels (Replicas back to Replicas - Adding). Partition.Moved
// marks a replica list changed after creation: replicas opened from then
// on join the group through its leader and never bootstrap it.
//   - Each node remembers its cluster id in the Raft stable store, so Open
//     can refuse a data dir of another cluster (ErrWrongCluster) before any
//     log is replayed, and Join can be refused by id.
//
// # Invariants
//
//   - A State is never modified once published: Apply copies what it
//     changes (copy-on-write of the top-level maps and of changed topics)
//     and shares the rest. Readers load it with one atomic read.
//   - Every topic has a non-zero id unique among topics, 1 to MaxPartitions
//     partitions, each with a non-empty list of distinct registered nodes.
//     DecodeSnapshot checks the same, so a restored state satisfies it too.
//   - State.Version is the Raft index of the last applied command, so it is
//     the same on every node for the same state; refused commands move it.
//   - Producer id blocks never overlap: NextProducerID only grows.
//   - A partition's recorded leader epoch only grows (record_leaders skips
//     older and equal epochs, and leaders that are not replicas).
//   - A node holding replicas is never removed.
//
// # Concurrency and locks
//
// Raft calls FSM.Apply, Snapshot and Restore from one goroutine. The state
// is an atomic.Pointer; FSM.mu guards only the Changed channel (closed and
// replaced on each publish) and is never held while calling out. Group.mu
// guards closed; Group.leaderMu guards the LeaderChanged channel. No lock
// is held while calling Raft, and no two of these locks are ever held
// together.
//
// Goroutines: Raft's own (stopped by Shutdown); Group.run, one per Group,
// which initialises the cluster when this node is its first leader and
// remembers the cluster id; and one per Propose/Join/Remove in flight,
// waiting on its Raft future. Close returns after Raft's and run have
// exited, not after those: Raft resolves a future by Shutdown at the
// latest, except one whose committed entry was still queued for its FSM
// when it shut down (hashicorp/raft v1.7.2), whose waiter never ends. The
// caller of such a proposal gets ErrClosed once Close shut Raft down.
//
// # Formats
//
// A command is one JSON object, the Data of a Raft log entry:
//
//	{"v":1,"op":"create_topic","args":{"name":"orders","id":"<32 hex>",
//	  "configs":{"retention.ms":"60000"},"assignment":[[1,2,3],[2,3,1]]}}
//
//	v     envelope version; Decode refuses any other
//	op    init_cluster register_node mark_node_leaving remove_node
//	      create_topic delete_topic create_partitions alter_topic_configs
//	      alter_broker_configs allocate_producer_id_block reassign_partition
//	      record_leaders alter_reassignment complete_reassignment
//	      alter_group_configs
//	args  the command struct's fields, by their json tags; unknown fields
//	      are refused, so a command from a newer version is never half
//	      applied
//
// JSON rather than a binary encoding: metadata commands are rare and small
// (a create of 100 partitions with 3 replicas is about 2 KiB), readable in
// a Raft log dump, and cluster.json was already JSON; a binary encoding
// would buy nothing measurable and cost a hand-written codec.
//
// record_leaders groups its changes by topic, with one-letter keys, as it
// is the one command sent per burst of elections (about 25 bytes per
// partition):
//
//	{"v":1,"op":"record_leaders","args":{"topics":[{"id":"<32 hex>",
//	  "partitions":[{"p":0,"l":2,"e":7},{"p":3,"l":2,"e":5}]}]}}
//
// A snapshot is {"format":1,"state":{...}}, the State with its json tags.
// encoding/json sorts map keys, so the same state gives the same bytes on
// every node (the determinism test compares them).
//
// On disk:
//
//	<data.dir>/meta/
//	  raft.db          raft-boltdb: Raft log and stable store (term, vote,
//	                   and the key "sluice-cluster-id")
//	  snapshots/       raft.FileSnapshotStore, Config.SnapshotRetain kept
//	  cluster.json     the single-node metadata, read once by LoadLegacy
//
// # Glossary
//
//   - preferred leader: a partition's first replica; placement balances
//     them, and the node moves partition leadership back to it.
//   - PID: producer id, reserved in blocks by AllocateProducerIDBlock.
//   - topic id: the 16-byte UUID Kafka 2.8+ clients use in place of names.
//   - version: the Raft index of the last applied command.
//
// # Non-obvious
//
//   - Raft replays the log after the latest snapshot in the background
//     after Open: State right after Open may be older than what was applied
//     before the restart. Wait with WaitVersion, or on Changed; on the
//     leader, Barrier returns once every committed command is applied
//     (package replication waits for it before acting on what is absent).
//   - raft.db is locked while a Group has it open; a second Open of the
//     same data dir (in this process or another) fails after 5s.
//   - A proposal whose leader lost leadership before commit may still take
//     effect (NotLeaderError.Uncertain). Retrying CreateTopic may then get
//     TOPIC_ALREADY_EXISTS for a topic this proposer created; compare ids.
//   - Placement is Kafka's rack-unaware layout (AdminUtils): leaders round
//     robin from the least-loaded node, followers at a per-topic shift
//     chosen to keep replica counts even. Racks are stored but not yet used.
//   - Every node is a voter today. DESIGN.md wants a small voter set; the
//     rest would join as non-voters (raft.AddNonvoter), which needs only a
//     Join option.
//   - Changed is level-triggered: a slow reader sees the latest state, not
//     each intermediate one, and must diff states rather than replay
//     commands.
//   - An unknown op or field is refused by Decode and so by Apply on an old
//     node, while a new node applies it: a rolling upgrade must not
//     propose a new command until every node runs a version that knows it
//     (a finalized metadata version in State is the usual guard; not built).
package meta
