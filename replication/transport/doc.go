// Package transport carries the Raft RPCs of many hashicorp/raft groups
// between nodes over one multiplexed set of connections per peer.
//
// It owns the node's Raft listener, the connections to peers, the wire
// format, and the routing of incoming RPCs to groups. It does not own the
// groups (replication creates, starts and stops each raft.Raft and closes
// its Transport), their stores, or membership: addresses come from raft's
// configuration.
//
// # Shape
//
// A node has one Mux. Mux.Serve accepts peers on one listener; Mux.Transport
// returns a group's raft.Transport (it also implements raft.WithClose and
// raft.WithPreVote), whose RPCs carry the group id. Per peer node the Mux
// keeps, dialled lazily and re-dialled after a failure:
//
//   - a control connection: heartbeats, AppendEntries without entries,
//     RequestVote, RequestPreVote, TimeoutNow, and Leaving (leaving.go: a
//     replica that left its group while its node runs on tells its
//     peers, which the failure detector could not) (small frames);
//   - a bulk connection: AppendEntries with entries, pipelined or not,
//     and ReadLog (read.go): a replica catching up after a snapshot
//     install reads a peer's committed batches, answered by the group's
//     LogReader on a goroutine of the group, never on the reader;
//   - up to Config.MaxSnapshotStreams short-lived snapshot connections, one
//     per InstallSnapshot in progress, closed when it ends. Its answer
//     comes when the receiver's restore ends, which reads the sender's
//     log first (ReadLog): each such read extends the call's wait, at
//     both ends, to at least Timeout from then (restore_wait.go).
//
// So a heartbeat never waits behind another group's 4 MiB AppendEntries on
// the sending socket, and a snapshot stream never blocks either. The count
// of connections and goroutines depends on the number of peers, not of
// groups.
//
//	node A                                                   node B
//	 group 1 Transport ─┐                                 ┌─► group 1 Consumer
//	 group 2 Transport ─┼─► Mux ══ control conn  ══► Mux ─┼─► group 2 Consumer
//	 ...                │        ══ bulk conn     ══►     │   ...
//	 group N Transport ─┘        ── snapshot conn ──►     └─► group N Consumer
//
//	(on node B, heartbeats go to the group's heartbeat handler, run inline
//	by the control connection's reader; heartbeats to one peer travel
//	together, see Heartbeat batches)
//
// The address a node dials for a peer is Options.DialAddress(advertised
// address), so an operator or a test can put a proxy on any link;
// Config.Advertise is what this node's groups report as LocalAddr.
//
// # Wire format (version 1)
//
// A dialler opens every connection with an 8-byte preface; a listener
// closes a connection whose preface has another magic or version. Then
// both sides exchange frames; responses come back on the connection the
// request went out on, matched by id, in any order.
//
//	preface:  0      4         5        8
//	          +------+---------+--------+
//	          | SLRT | version | 0 0 0  |
//	          +------+---------+--------+
//
//	frame:    0              4      5                  13
//	          +--------------+------+------------------+------------------+
//	          | length u32be | type | request id u64be | payload ...      |
//	          +--------------+------+------------------+------------------+
//	          length counts type, id and payload; at most MaxFrameSize,
//	          checked before anything is allocated.
//
//	type:     1 AppendEntries   2 RequestVote   3 InstallSnapshot
//	          4 TimeoutNow      5 RequestPreVote  6 Ping  7 ReadLog
//	          0x10 Heartbeats (a batch of heartbeats; see below)
//	          type|0x80 is the response to a request of that type.
//
//	request payload:   group:bytes  header  fields of the type...
//	response payload:  error:bytes  header  fields of the type...
//	                   (an empty error means success; raft's own answer)
//	header:            protocol-version:uv  id:bytes  addr:bytes
//	uv = unsigned varint;  bytes = uv length, then the bytes;  bool = 1 byte
//
//	AppendEntries:   term:uv leader:bytes prev-log-entry:uv prev-log-term:uv
//	                 leader-commit:uv count:uv, then count times:
//	                 index:uv term:uv type:u8 data:bytes extensions:bytes
//	                 appended-at:uv (unix nanoseconds as two's complement,
//	                 0 for the zero time)
//	RequestVote:     term:uv candidate:bytes last-log-index:uv
//	                 last-log-term:uv leadership-transfer:bool
//	RequestPreVote:  term:uv last-log-index:uv last-log-term:uv
//	InstallSnapshot: snapshot-version:uv term:uv leader:bytes
//	                 last-log-index:uv last-log-term:uv peers:bytes
//	                 configuration:bytes configuration-index:uv size:uv,
//	                 then, outside the frame, exactly size raw bytes
//	TimeoutNow:      (header only)
//	Ping:            group empty, no header, no fields; the response
//	                 likewise. The receiving connection answers it itself.
//	ReadLog:         asker:bytes from:uv max-bytes:uv (no header: not a
//	                 raft RPC; asker is the sender's advertised address)
//	responses:       AppendEntries term:uv last-log:uv success:bool
//	                 no-retry-backoff:bool; RequestVote term:uv peers:bytes
//	                 granted:bool; RequestPreVote term:uv granted:bool;
//	                 InstallSnapshot term:uv success:bool; TimeoutNow -;
//	                 ReadLog log-start:uv end:uv batches:bytes.
//
//	Heartbeats:      frame id 0, no group, no error field; count:uv, then
//	                 count times id:uv item:bytes, where a request item is
//	                 group:bytes and an AppendEntries request's fields
//	                 (header first) and a response item is error:bytes and
//	                 an AppendEntries response's fields (header first).
//	                 Each id is a call of its own: an item the receiver
//	                 does not answer in the batch response is answered by
//	                 an ordinary AppendEntries response frame of that id.
//
// A frame with bytes left over, a length past its end, an unknown type or
// a bool other than 0 or 1 is malformed (ErrMalformed): the connection is
// closed, nothing panics (FuzzDecodeRequest, FuzzDecodeResponse).
//
// # Invariants
//
//   - A frame is written whole under its connection's write lock, from
//     net.Buffers (writev): entry Data over 256 bytes is written from raft's
//     own slice, never copied on the send side.
//   - A received frame is read into a buffer of its exact size that is
//     never reused, and every decoded slice (entry Data included) aliases
//     it: one copy, kernel to buffer.
//   - The RPCs of one group from one peer reach Consumer in the order they
//     were received: each group has a FIFO queue and at most one drain
//     goroutine, which exists only while the queue is not empty and hands
//     RPCs to raft one at a time.
//   - Heartbeats bypass the queue: the heartbeat handler runs on the
//     connection's reader, and raft answers before it returns, so the
//     response is written at once. Only a heartbeat of the term raft last
//     accepted a heartbeat of that group in (answered Success in that
//     term) does: any other goes through the group's queue to raft's main
//     loop, because raft persists a new term (an fsync) inside the
//     handler, and the reader must never wait on a disk (heartbeat.go).
//   - A heartbeat is a call of its own id on the control connection; with
//     Config.HeartbeatBatchWindow > 0 it is written in the next batch
//     frame, at most its group's window after it was queued (the batch
//     goes at the earliest deadline in it), and answered in the
//     receiver's batch answer or on its own.
//   - Every pending call is completed exactly once, by whoever removes it
//     from its connection's pending map (response, timeout, broken
//     connection, closed group); a caller waits for that completion before
//     returning, so raft's response struct is never written after return.
//   - Pipelined futures reach raft in send order, through a channel with a
//     slot per request in flight (Config.MaxInFlight); only when raft is
//     slow to read it does a short-lived feed goroutine hold the rest.
//   - An RPC for a group that is not open on the receiving node is answered
//     at once with an error, not left to time out (the sender may retry
//     an AppendEntries: append_retry.go).
//
// # Goroutines and their owners
//
// The Mux owns, and Close stops and waits for: one reader per connection
// (client side: completes calls; server side: decodes and routes), a
// group's drain goroutine while its queue is not empty, one goroutine per
// ReadLog being answered, a pipeline's feed
// goroutine while raft lags, a waiter for a heartbeat raft did not
// answer synchronously, the failure detector (one per Mux, unless
// PeerFailureTimeout is 0) and its dial of a peer while one runs. The
// accept loop is the caller's Serve. A group's Transport.Close waits for
// the goroutines of that group. None exists per group at rest: with 1,
// 200 or 1,000 idle groups two connected Muxes run 6 goroutines (4
// readers, 2 detectors) over 4 connection ends
// (TestGoroutinesIndependentOfGroups).
//
// # Lock order
//
// peer.mu (held while dialling) before Mux.mu (track the new connection);
// pipeline.mu before Transport.mu before Mux.mu (start a goroutine with
// goFunc). clientConn.mu, the connections' write locks, heartbeatMu,
// peerDownMu and snapOutMu are leaves. The detector holds no lock while
// it pings, starts a dial or calls the peer-down handlers (it copies the groups
// under Mux.mu's read lock first). No lock is held while calling into raft or a pending call's
// done, and Mux.mu is released before Close closes the groups.
//
// # Measurements
//
// go test -run '^$' -bench . -count 3 ./replication/transport/ on the
// shared 2-core development machine (load average 3-5 from other work, so
// single figures move by ±25% between runs; each ratio compares medians of
// the same run): pipelined AppendEntries of 64 entries per request, window
// 4 on both transports, over 127.0.0.1.
//
//	entry size   run   Mux         raft.NetworkTransport   ratio
//	1 KiB        1     340 MB/s    214 MB/s                1.59
//	1 KiB        2     470 MB/s    231 MB/s                2.0
//	64 KiB       1     688 MB/s    573 MB/s                1.20
//	64 KiB       2    1196 MB/s    752 MB/s                1.59
//
// With 32 groups replicating at once between two nodes
// (BenchmarkAppendEntriesGroups, 1 KiB entries), all sharing one bulk
// connection over the Mux against a NetworkTransport per group: 250 MB/s
// against 189 MB/s, ratio 1.33, in one run; 255 against 152 MB/s, 1.68, in
// another (NetworkTransport's figure moves most between runs). Both are bound
// by the two cores (writev, read and allocation dominate the profile; no
// lock shows).
//
// Allocated per request (1 KiB entries): Mux 93 KB in 36 allocations,
// NetworkTransport 76 KB in 277. Encoding and decoding alone
// (BenchmarkCodec, 64 × 1 KiB): this format 450-690 MB/s with 15
// allocations, go-msgpack as NetworkTransport uses it 240-295 MB/s with
// 318. Goroutines: two connected Muxes run 4 with 1, 200 or 1,000 groups;
// the 50-group, 3-node raft cluster test runs about 860 in all, 25 of them
// the Muxes'.
//
// Heartbeats (BenchmarkHeartbeats: 333 groups from one Mux to another,
// each sending every 100-200 ms as raft does, about 2,200 a second; CPU
// time of the process per heartbeat, both ends, two runs): each in a frame
// of its own 60-70 µs, batched in 10 ms windows 36-38 µs (ratio 1.8). What
// remains is mostly goroutine wake-ups, timers and channel hand-offs, on
// the sender as in raft.
//
// # Peer liveness (liveness.go)
//
// Partition groups heartbeat rarely (raftgroup.Config: seconds apart) so
// that idle groups cost little; the Mux's failure detector tells them
// quickly when a node is gone. Every PeerFailureTimeout/5 it looks at each
// watched peer (WatchPeer, and every peer an RPC was sent to): it pings
// the peer's control connection when nothing was read on it for that
// long (the peer's reader answers; no group is involved), and re-dials a
// broken one on a goroutine of its own. A peer is declared down when
// nothing was read from it for PeerFailureTimeout, or as soon as a dial
// to it is refused after the last frame read from it (a killed process:
// two checks at most), or a connection to it is closed or reset by the
// other side before a frame was read on it (the same behind a proxy,
// which accepts the dial and then reaches nothing); it is up again at
// the next frame read. Each
// transition to down calls every group's peer-down handler
// (SetPeerDownHandler) on the detector's goroutine. The detector never
// answers for a peer and never changes what raft is told: it only
// reports. A group acts on it with ElectNow, which hands its own raft a
// TimeoutNow through Consumer, behind what is queued; what makes that
// safe (only a follower whose leader is the dead node does it) is
// replication/raftgroup/failover.go's to keep. The cluster reads the
// same verdicts (PeerDown) to leave down nodes out of the brokers it lists
// to clients, and has the detector watch every registered node
// (replication/liveness.go).
//
// # Heartbeat reuse (heartbeat_reuse.go)
//
// A group that opts in (SetHeartbeatReuse; partition groups do) has a
// heartbeat to a follower answered from that follower's last real answer
// when it was a Success of the same term, less than the window ago, and
// the detector heard from the follower's node recently on the same
// control connection; otherwise it is sent. raft counts any answer as
// contact for its lease, so the lease still ends within half of
// PeerFailureTimeout of a node going silent; VerifyLeader, which counts
// answers as votes, is unsound within the window (Sluice does not call
// it on partition groups).
//
// # Glossary
//
//   - group: one Raft group (a partition, or the metadata group), named by
//     a string unique on the node.
//   - peer: another node, known by its advertised Raft address.
//   - control, bulk, snapshot connection: see Shape.
//   - frame: one length-prefixed message; preface: the connection's first
//     8 bytes.
//
// # Non-obvious
//
//   - raft's pipelineDecode never calls Error on a future: it reads
//     Response and aborts on Success == false. A failed pipelined request
//     is therefore reported through a zero response, as NetworkTransport
//     does.
//   - A caller that times out must still wait for its call's completion,
//     or the reader could fill raft's response struct after raft reads it
//     (a data race the race detector finds).
//   - A timeout alone does not condemn a shared connection (one group's
//     raft may be slow). When nothing at all was read on it for a Timeout,
//     the sender pings it; a connection that does not answer the ping
//     within a Timeout is closed, so a black-holed link is re-dialled.
//   - The heartbeat handler runs on the control connection's reader: when
//     raft's handler blocks (it writes the stable store on a new term),
//     heartbeats of the other groups from that peer wait. Terms change
//     rarely; per-request handoff would cost a goroutine per heartbeat.
//   - A re-dialled control connection counts as a peer back up (peer-up
//     handlers run): a peer restarted faster than the detector can declare
//     it down is a new process that no cached heartbeat answer speaks
//     for, and whose groups know no leader until one heartbeats them.
//   - A peer is watched from its first RPC or WatchPeer on, and stays
//     watched: a node removed from the cluster is still pinged (or its
//     dial refused) every PeerFailureTimeout/5 until this node restarts.
//   - A follower sends its leader no RPC; it learns of the leader's death
//     only because its group watches the leader (raftgroup calls
//     WatchPeer for every leader raft reports).
//   - raft's WithPeers (Connect, Disconnect) is for loopback transports;
//     like NetworkTransport, this one does not implement it. Tests cut
//     links with a TCP proxy through Options.DialAddress instead.
//   - An InstallSnapshot's bytes follow its frame on a connection of its
//     own; the receiver reads them inside raft's call and closes the
//     connection after the response, since a partial read leaves the
//     stream at an unknown position.
//   - Raft may answer Respond(nil, err); the response then carries the
//     zero value of the type, so every response decodes.
//   - A follower in raft's pre-vote phase is a candidate in the old term:
//     a heartbeat of that term makes it a follower and persists the term
//     again. raftlog's stable store writes nothing for a value it already
//     has, so such a heartbeat on the fast path costs no fsync.
//   - Under an election storm (1,000 groups electing at once, before the
//     fixes above) the control connections' readers sat in fsyncs, every
//     group's heartbeats timed out, and elections never settled; the idle
//     cost measured then (half a core for 300 partitions) was that storm.
//
// # Heartbeat batches
//
// raft sends each follower of each group a heartbeat every
// HeartbeatTimeout/10 to twice that: about 4,400 a second from a node
// leading a third of 1,000 partitions of replication factor 3, and as many
// answered. One frame each cost a write and a read at both ends. With
// HeartbeatBatchWindow (default 10ms) the heartbeats queued for a peer in
// that window go in one frame and their answers come back in one; the
// window is small against raft's heartbeat timeout (hundreds of
// milliseconds to seconds). A batch is written by a timer per connection
// (time.AfterFunc), armed for the earliest deadline of the heartbeats in
// it, so no goroutine waits per peer. A group may wait longer
// (SetHeartbeatBatchWindow): partition groups, which heartbeat every 1-2 s
// against a 10 s timeout, wait up to 250 ms, so an idle node's heartbeats
// to a peer go in a few frames a second instead of about 50; the metadata
// group keeps the 10 ms of the Config, and a batch holding one of its
// heartbeats goes within that.
//
// # Idle AppendEntries reuse (heartbeat_reuse.go)
//
// Once heartbeats are batched, raft's idle AppendEntries (no entries, every
// CommitTimeout, to tell a follower the commit index) were as many frames
// as the heartbeats, and the metadata group's, at its 50 ms CommitTimeout,
// the most of them. A group that opts in (SetIdleAppendReuse: partition
// and metadata groups) has one answered from the follower's last real
// answer to an identical request (same term, previous entry, commit
// index; Success) for up to a maximum age while the failure detector
// hears from the follower on the same connection. The follower would
// learn nothing from it, and raft uses the answer only as it uses a
// heartbeat's (term, last contact, VerifyLeader's votes, which it makes
// unsound for that age: Sluice calls VerifyLeader on no group). Measured
// with 1,000 idle partitions of replication factor 3 on three nodes, the
// two together took a node's writes from about 400 to about 110 a second
// and its CPU from 12-15 % to 5-8 % of a core (replication/doc.go).
//
// # Append retry (append_retry.go)
//
// raft's leader tries a follower again after a failed AppendEntries at
// its next new entry or after CommitTimeout (5 to 10 s for partition
// groups, and a longer one would make idle leaders wake less), so an idle
// partition's follower back from a restart, or a replica a reassignment
// adds before its group opened, waited that long for its entries. A group that opts in (SetAppendRetryWait: partition
// groups, three heartbeat timeouts) has a failed AppendEntries retried in
// the call: at once on a new connection when the old one broke under it,
// when the peer comes back (the detector's peer-up, or a new control
// connection) when its node was down or refused the dial, and every
// 250 ms while the node answers that it has no such group open. Anything
// else fails the call at once. The wait runs on raft's replication
// goroutine for that follower, no goroutine of the transport's; closing
// the group, or EndAppendRetries before raft's Shutdown (which waits for
// that goroutine), ends it. Retrying an AppendEntries is safe as raft's
// own retries are: a follower checks the previous entry and term of
// each. A RequestVote or RequestPreVote is asked again in the same way
// while the peer has no such group open: a replica whose node restarted
// as its partition was created may open the group just after a failover
// election asked for its vote, and the candidate would otherwise wait
// out raft's election timeout (20-40 s) to ask again.
package transport
