// Package wire is Sluice's Kafka protocol server: listeners, framing,
// request headers, dispatch, and one handler per API that translates kmsg
// requests into calls on the cluster and its partitions, and errors into
// Kafka error codes.
//
// It owns no state but connections and fetch sessions; it does not store,
// replicate or validate batches (partition and log do). It sees the cluster
// only through interfaces it declares (cluster.go: Cluster, Topic,
// Partition; groups.go: GroupCoordinator; groups_share.go:
// ShareGroupCoordinator, which the group coordinator may implement;
// transactions.go: TransactionCoordinator; share_state.go:
// ShareStateCoordinator; shares.go: ShareGroups);
// cmd/sluice passes the concrete *replication.Cluster,
// *consumergroup.Coordinator, *txn.Coordinator and
// *sharestate.Coordinator. A
// Partition appends
// (its place fixed at once, commit awaited later: acks=1 and acks=all wait,
// acks=0 does not), reads, waits for data and reports leader epochs; it
// cannot reach the replica behind it.
//
// # A connection
//
//	           frames                         responses, in request order
//	client ──────────────▶ readLoop ──queue──▶ writeLoop ──────────────▶ client
//	                         │ decode (kmsg)     │ finish(): wait for acks
//	                         │ handler: appends  │   or fetch data (ctx)
//	                         ▼                   ▼
//	                      cluster / partitions
//
// The reader decodes each request and runs its handler at once, so appends
// from one connection happen in request order. A handler either answers
// now or returns a finish function that the writer runs in turn; waiting
// for durability (acks) or for data (fetch MinBytes) therefore overlaps
// with reading and appending the next pipelined requests. The queue holds
// at most Config.MaxInFlight requests: a client that pipelines faster than
// its requests complete is slowed down, not buffered without bound.
//
// # Invariants
//
//   - Responses leave in request order; a request gets at most one response
//     (none for Produce with acks=0).
//   - The frame size is checked against socket.request.max.bytes before the
//     frame is allocated, and a frame's memory is taken from the budget
//     before the bytes it holds are read; every charge is given back once
//     (done, fetch.release, or on a read error).
//   - A pooled buffer (buffers.go) is returned only when nothing reads it
//     any more: a request frame after its response is written, a fetch's
//     read buffers after the response that points into them is written.
//   - A malformed frame, an unknown API key or an unsupported version
//     (other than ApiVersions, which falls back to v0 per KIP-511) closes
//     only its own connection. A panic in a handler is recovered, logged
//     with its stack, and closes only its connection.
//   - What ApiVersions advertises is the dispatch table in handlers.go,
//     nothing else; TestDispatchTableAgrees checks it against the handler
//     files.
//   - Metrics come from one hook in the dispatch (observer.go: every table
//     row's handler is wrapped by observe, which reports latency and the
//     response's error codes once it is ready) and one in Produce (bytes
//     and records appended per topic); Fetch bytes and records out are
//     read off the final response in observe. wire imports no metrics
//     library: cmd/sluice/admin implements Observer.
//
// # Errors
//
// Lower packages return *kerr.Error values, possibly wrapped with a message
// (fmt.Errorf("...: %w", kerr.X)). errorCode turns any error into a code:
// a kerr.Error gives its own; a closed partition or shutdown gives the
// retriable NOT_LEADER_OR_FOLLOWER; a failed disk operation
// (log.IsStorageError) gives the retriable KAFKA_STORAGE_ERROR and is
// logged with the file and the OS error; anything else is
// UNKNOWN_SERVER_ERROR and is logged, since it is a server fault. errorMessage gives the
// wrapped message for responses that carry one.
//
// # Forwarding to the metadata leader
//
// Only the metadata leader creates and deletes topics, adds partitions,
// changes configs and reserves producer id blocks; any node answers
// (KIP-590's forwarding, without its Envelope). A handler does what it
// can here (validation, and everything on the leader); the items the
// cluster answered NOT_CONTROLLER are sent, as one request of the same
// API, to the leader's Kafka listener by the server's forwarding client
// (forward.go: one kgo client, made on first use, seeded with the
// registered brokers and pinned per request to the leader's id), and the
// leader's per-item answers replace them (forward_admin.go). Creates,
// deletes and added partitions are then awaited in this node's view.
// Covered: CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
// IncrementalAlterConfigs, Metadata's auto-create, and InitProducerId's
// producer id blocks (AllocateProducerIds). DeleteRecords is not: it is
// led by the partition's leader, to which clients send it.
//
//   - A forward is bounded by the request's timeout (CreateTopics,
//     DeleteTopics, CreatePartitions) or 30s, and by Shutdown.
//   - The forwarding client's id is "sluice-forward-<node id>". A request
//     carrying it is never forwarded again, so no request loops; a node
//     that lost leadership answers it NOT_CONTROLLER, as a node that knows
//     no leader answers any client, and clients retry.
//   - The APIs between nodes, AllocateProducerIds and AlterPartition
//     (partition leaders report their elections: 56_alter_partition.go),
//     are advertised in ApiVersions only to forwarding clients, as a
//     Kafka broker does not advertise controller APIs to clients, and
//     answered only for them (and for registered node ids).
//
// # Transactions
//
// The transaction coordinator (package consumergroup/txn) answers
// FindCoordinator key type 1, InitProducerId with a transactional id,
// AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions and
// ListTransactions; those APIs are served and advertised only with one
// (Options.Transactions, which needs Options.Groups). wire serves the
// coordinator in two ways:
//
//   - Markers (txn_send_markers.go): the Server is the coordinator's
//     txn.MarkerWriter. A partition this node leads gets its marker
//     through writeTxnMarker (txn_marker.go); the partitions of each other
//     leader go in one WriteTxnMarkers request, sent by the forwarding
//     client pinned to that node. What was not written is returned, and
//     the coordinator retries it.
//   - Produce verification (txn_verify.go, KIP-890): a transactional
//     produce that would begin its producer's transaction on a partition
//     this node leads is checked against the coordinator (locally, or
//     AddPartitionsToTxn v4 VerifyOnly through the forwarding client)
//     before the append, or from Produce v12 (transaction version 2) has
//     the coordinator add the partition (AddPartitionsToTxn v5); the
//     partition's guard (partition/txn_verify.go) refuses the append if a
//     marker ended the transaction meanwhile. Once the transaction is
//     under way on the partition, later produces are not verified.
//     CONCURRENT_TRANSACTIONS is asked again for up to a second.
//     TxnOffsetCommit is verified the same way on the group's
//     __consumer_offsets partition (28_txn_offset_commit.go): VerifyOnly
//     before v5, an add from v5; the group coordinator appends with the
//     guard (AppendAsCoordinatorVerified).
//   - Transaction version 2: ApiVersions v3+ finalizes the feature
//     transaction.version at level 2 when a transaction coordinator is
//     configured; TxnOffsetCommit v5 adds the group's offsets partition to
//     the transaction before the group coordinator writes.
//
// # Share group state
//
// The share coordinator (package consumergroup/sharestate) answers the
// inter-broker share-state APIs InitializeShareGroupState,
// ReadShareGroupState, WriteShareGroupState, DeleteShareGroupState and
// ReadShareGroupStateSummary (keys 83-87), served and advertised only
// with one (Options.ShareState). Each handler begins the request's
// operations on the reader goroutine (their records are appended in
// request order) and waits for the commits in reply.finish, within 30 s,
// so a peer's pipelined writes overlap. Nodes send these requests to each
// other through sharestate.Router, not through wire.
//
// # Share groups' deliveries
//
// ShareFetch and ShareAcknowledge (keys 78, 79) are served and advertised
// only with share groups (Options.Shares, a *share.Manager, which needs
// Groups). The share session changes on the reader goroutine, in request
// order; acknowledgements, acquisition and the long poll run in
// reply.finish, so a member's requests on one connection take effect in
// order. A share session belongs to the connection that opened it
// (conn.shareSessions): when the connection closes, its sessions close
// and their members' acquired records are released, within 10 s.
//
// # Shutdown
//
// Shutdown closes listeners, stops every reader, answers long-polling
// fetches at once with what they have and JoinGroup/SyncGroup waits with
// REBALANCE_IN_PROGRESS (a rebalance can last minutes), waits for produce
// and commit responses to finish (their writes are durable or fail), then
// for every goroutine. If its ctx ends first, every wait is cut short and
// connections are closed.
//
// # Glossary
//
//   - KIP-227 fetch session: a broker-side record of a consumer's fetch
//     positions, so incremental fetches send only changes.
//   - flexible version: a request version using KIP-482 compact encoding
//     and tagged fields; its header is v2 (response header v1).
//
// # Memory
//
// Request frames, the record bytes fetches read and encoded responses live
// in buffers lent by one pool per server, in power-of-two size classes
// (buffers.go), so the hot paths neither allocate nor zero per request.
// The pool keeps at most socket.buffer.pool.bytes of idle buffers. What is
// in use is bounded, across connections, by the request memory budget
// (budget.go, queued.max.request.bytes):
//
//	frame prefix read ─► small (≤ 64 KiB)? take it whole (an 8 MiB reserve
//	                     above the budget keeps Metadata and heartbeats
//	                     answered while producers have used it up)
//	                   ─► large: take 1 MiB, read; take the next doubling,
//	                     copy, read; ... (frame_reader.go)
//	no memory? the reader waits in line and reads nothing from its socket:
//	TCP slows the client down. Memory comes back when the response is
//	written (inflight.charge).
//
// A frame never takes memory for bytes that have not arrived. So that
// connections holding partly read frames cannot all wait for each other,
// the waiter at the head of the line may take the progress token and
// finish its frame beyond the budget (only while the budget is not
// already over it); memory held stays below budget +
// socket.request.max.bytes + 8 MiB. A fetch reads no more than the budget
// has room for when it begins; with less than 1 MiB free it waits in line
// with the producers' frames for a 1 MiB grant, so consumers keep a share
// during a flood. It holds what it read (the first batch is always whole)
// until its response is written, and gives back the unused grant before
// it waits for data. A fetch response is written around its record bytes by one
// vectored write (fetch_response.go) rather than copied into one buffer.
//
// # Non-obvious
//
//   - kmsg decodes a request's byte fields as slices of its frame. Frames
//     are reused only for Produce and Fetch (keepsFrame), whose handlers
//     keep none of those slices past the response: Produce's batches are
//     copied into the segment by log.Append. A lower layer that keeps a
//     produced batch's bytes after Append returns (a Raft log cache, say)
//     must copy them, or keepsFrame must stop reusing Produce frames.
//     Every other API decodes a copy: the group coordinator keeps
//     JoinGroup metadata and SyncGroup assignments.
//   - The fetch response marker (fetch_response.go) is random per process
//     and never sent; should it be found where no length prefix precedes
//     it, the response is encoded the plain way.
//   - A fetch response must carry empty, not null, record bytes for a
//     partition with no data: librdkafka rejects null.
//   - ApiVersions responses always use response header v0, even for
//     flexible versions, so a client can parse them before negotiating.
//   - acks=0 producers get no response; when a partition fails, the
//     connection is closed so they notice and refresh metadata.
//   - memoryBudget.mu is a leaf lock: nothing is called while it is held,
//     and the log may be inside its own locks when a fetch charges read
//     memory (force, which never waits).
//   - The dispatch table is filled in init: ApiVersions' handler reads it,
//     which would otherwise be an initialization cycle.
//   - kgo refuses to send a request whose key the broker did not
//     advertise, so the KIP-511 fallback answer to an ApiVersions of a
//     version we do not serve must list the internal APIs too when the
//     client is a forwarder (kgo asks v5 first, then uses that list).
//   - The leader answers a forwarded request at the highest version both
//     speak; the handler copies its per-item answers into the client's
//     response, of the client's version, so an old client gets an answer
//     it can decode.
package wire
