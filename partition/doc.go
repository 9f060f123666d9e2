// Package partition is one partition replica: its log, high watermark, log
// start offset, leader epoch, producer state (idempotence and
// transactions), last stable offset, aborted-transaction index and the
// waiters of fetches long-polling it.
//
// # Ownership
//
// A Replica owns its directory: the segmented log (package log) and the
// producer state snapshot beside it. It does not own the Flusher (shared by
// every partition of a node), leadership or the replication commit index
// (package replication decides those, and calls SetLeaderEpoch, Prepare,
// Apply, ResetPending and, with ExternalHighWatermark,
// AdvanceHighWatermark), nor the Kafka protocol (package wire turns
// requests into calls here and the returned *kerr.Error values into
// codes).
//
//	<dir>/
//	  00000000000000000000.log    ... the log's files (package log)
//	  producer.snapshot           producer state at the last clean Close
//	  producer.snapshot.tmp       only while Close writes it
//
// The log also keeps, for this package, the .log-start-offset
// (DeleteRecordsBefore) and .cleaner-checkpoint (Compact) files and the
// cleaner's .cleaned and .swap segment files (see package log).
//
// # Retention, DeleteRecords and compaction
//
// EnforceRetention (retention.go) deletes whole oldest segments by
// retention.ms (segment max timestamp below now - RetentionTime) and
// retention.bytes (while total - segment size >= RetentionBytes), never the
// active segment nor one reaching the last stable offset (so the first
// batch of an open transaction stays for a rebuild to find). DeleteRecordsBefore
// (delete_records.go) moves the log start offset, possibly inside a
// segment, durably. Compact (compact.go) is Kafka's log cleaner: an offset
// map key -> newest offset over the dirty part, then every cleanable
// segment rewritten batch by batch (through package record) and swapped
// in. Kafka's
// rules kept:
//
//   - A rewritten v2 batch keeps its base offset, last offset delta,
//     leader epoch, producer id, epoch and base sequence; only the kept
//     records remain, the CRC is recomputed, the codec is the original's
//     (record.Compress). A batch left empty goes, unless it is the latest
//     batch of its producer (kept empty so producer state survives a
//     rebuild from the log).
//   - Tombstones: KIP-534. The first clean that keeps a tombstone's batch
//     sets batch attribute bit 6 and stores the delete horizon (now +
//     DeleteRetention) in baseTimestamp, re-encoding record timestamp
//     deltas; a later clean after the horizon removes the tombstone. The
//     horizon thus persists in the data itself. A pass is also due once
//     the earliest horizon stored in the cleaner checkpoint has passed.
//   - MinCompactionLag excludes, whole, the first dirty segment whose
//     newest timestamp is within the lag and all after it; the dirty ratio
//     and MaxCompactionLag (first dirty batch's max timestamp) decide when a
//     pass is due; a map that fills (CleanLimits.MaxMapBytes) ends the pass
//     there and the rest waits for the next.
//   - Transactions (KIP-98): the cleanable range ends at the LSO; the
//     records of an aborted transaction are removed (and never enter the
//     offset map, so they cannot shadow an older value); a marker stays
//     while a batch of its transaction (before it) stays, then its first
//     clean stamps a delete horizon into it, as for a tombstone, and a
//     clean after the horizon removes it (emptied instead when it is the
//     last batch of its group: an empty control batch ends nothing). A
//     producer's last batch is kept, emptied, as for idempotence, and with
//     it its transaction's marker. A removed ABORT marker takes its entry
//     of the aborted index with it once its group is swapped in (Kafka
//     rewrites the transaction index likewise): a consumer told of an
//     aborted transaction whose marker it never reads would drop that
//     producer's later transactions too.
//   - The cleaner drops keyless records; Append refuses them
//     (InvalidRecord) when the policy includes compact, as Kafka's
//     LogValidator does for compact and compact,delete alike.
//
// Deviations: the offset map holds whole keys (no hash collisions; memory
// estimated as key length + 48 bytes); consecutive cleaned segments are
// merged up to SegmentBytes of original size; each cleaned group keeps its
// last batch (emptied if need be) so segments stay contiguous; the
// leader-epoch cache is rebuilt from batch headers on Open, so a removed
// first batch of an epoch moves that epoch's start there; producer state is
// never evicted when the log start passes a producer's batches.
//
// # A produce
//
// A produce is two steps, so that Raft can run between them:
//
//	leader                                         every replica
//	Prepare(b, epoch) ──Entry──► Raft log ──commit──► Apply(Entry)
//	  validate each batch                             offsets from the log end
//	  sequences vs applied + in flight                re-check sequences vs applied
//	  read the clock (LogAppendTime)                  stamp offset, epoch, time
//	  nothing written                                 log.Append, producer state,
//	                                                  epoch cache, (HWM)
//
// A replicated partition uses the same Prepare, but its Raft log is the
// segment log (replication/raftlog): each batch is its own Raft entry,
// written by the log store before it commits, and ApplyStored (stored.go)
// is the apply step that records an already written batch.
//
// Prepare (prepare.go) validates every batch of the request (length,
// magic, CRC-32C, record count, max.message.bytes, the topic's timestamp
// and key rules, and, in checkRecords (records.go), that its records
// section decompresses within MaxDecompressedBytes and decodes to exactly
// the header's record count with offset deltas 0..n-1, as Kafka's
// LogValidator: a poison batch is refused by the leader, never
// replicated), then checks every idempotent producer sequence against
// the in-flight overlay (below), staged batch by batch, and returns an
// Entry (entry.go): the batches verbatim, the leader
// epoch to stamp (the Raft term) and the LogAppendTime the leader chose,
// or -1. Apply (apply.go) assigns offsets from the log end, checks the
// sequences again against the applied producer state only, stamps base
// offsets, the leader epoch and (LogAppendTime) the timestamp into the
// headers and writes all batches with one log.Append. A rejection at
// either step leaves log and producer state untouched.
//
// Append is Prepare then Apply under one hold of Replica.mu, with the
// epoch SetLeaderEpoch set and nothing left in flight: the single-node
// produce. Without Durable the high watermark moves to the log end at
// once; with Durable it moves when the Flusher reports the sync
// (log.Options.OnSynced). WaitCommitted blocks a produce with acks=all/1
// until then. With Options.ExternalHighWatermark the owner (replication)
// bounds it instead with AdvanceHighWatermark: the high watermark is the
// lowest of that bound, the log end and, with Durable, the synced offset.
//
// # Transactions
//
// A transactional batch (attribute bit 4) of a producer starts its
// transaction on the partition, if none is ongoing, at the batch's offset
// (Kafka's currentTxnFirstOffset, producerEntry.txnFirstOffset); later ones
// continue it. A non-transactional batch of a producer in a transaction is
// InvalidTxnState. A marker ends it: a control batch (attribute bit 5)
// that only the leader builds (PrepareMarker, AppendMarker; a client's is
// InvalidRecord), whose one record is Kafka's EndTransactionMarker
// (marker.go). Checked as Kafka's ProducerAppendInfo: an epoch below the
// producer's is InvalidProducerEpoch, a coordinator epoch below that of
// the producer's last marker TransactionCoordinatorFenced; the marker
// raises the producer's epoch to its own (the window restarts; the
// transaction and coordinator epoch do not) and records its coordinator
// epoch. An ABORT marker adds the transaction to the aborted index
// (producer, first offset, marker offset); a marker of a producer with no
// transaction ongoing ends nothing and records nothing.
//
// A coordinator's batches (PrepareAsCoordinator, AppendAsCoordinator: the
// group coordinator's TxnOffsetCommit records) carry a producer id and no
// sequence (base sequence -1): only their epoch is checked, and a
// transactional one joins the producer's transaction, so its marker ends
// it and the LSO waits for it. A client's batch without a sequence is
// OutOfOrderSequenceNumber at Prepare, which is what lets Apply take any
// such batch in the log for a coordinator's. Neither kind is tracked in
// the in-flight overlay (no sequences to forecast); Apply checks them.
//
// LSO = min(HWM, first offset of every ongoing transaction, first offset
// of every completed transaction whose marker is not yet below the HWM).
// The last term is Kafka's "unreplicated" transactions: a marker above the
// HWM may still be lost to a leader change, and the transaction would be
// open again, so a read_committed consumer must not pass it yet.
// txnState (txn_state.go) keeps those sets under its own leaf lock, and
// advanceHWM recomputes the LSO (loading the HWM under that lock) before
// it wakes the waiters, so a read_committed long-poll wakes when the LSO
// moves: it only moves when the HWM does.
//
// The aborted index lives in memory, an atomically published slice by
// marker offset, and is trimmed when the log start passes an entry. It is
// not a file of its own: the producer snapshot (version 2) carries it, with
// each producer's transaction and the completed transactions not yet below
// the HWM, for a clean restart; after a crash, the rebuild that already
// scans every batch header for the producer state rebuilds it too,
// reading the (small) control batches themselves for their COMMIT/ABORT
// type. One source of truth, the log, and no second file to keep in step
// with truncation, retention and compaction. Version 1 snapshots (from
// before transactions, when no transactional batch could be in the log)
// load with no transaction state.
//
// Deviations: the aborted index is held whole in memory (about 24 bytes
// per aborted transaction still in the log), not in per-segment .txnindex
// files as Kafka keeps it; the cleaner looks a batch up in it by binary
// search, then a scan to the producer's next entry.
//
// A read_committed Read stops at the LSO and returns in ReadResult.Aborted
// the aborted transactions with last offset >= the read offset and first
// offset < the end of the last batch returned, as Kafka's Fetch reports
// them.
//
// # Apply is deterministic
//
// Every replica that applies the same entries in the same order from the
// same log ends with the same log bytes, producer state and leader-epoch
// cache, and returns the same results. Apply reads only the entry, the log
// end offset and the applied producer state: never the clock (Prepare
// chose the time), never the topic config (replicas may see a change at
// different points of their logs), never SetLeaderEpoch's epoch (the entry
// carries its own). Its outcomes that are *kerr.Error values (a duplicate
// answered with the original offsets, OutOfOrderSequenceNumber,
// InvalidProducerEpoch, InvalidTxnState, TransactionCoordinatorFenced,
// InvalidRecord for a mix) are deterministic too;
// any other error (storage, ErrCorruptEntry, ErrClosed) is not, and stops
// the replica. The one clock below Apply is the log's segment.ms roll
// check: it decides where a segment file ends, never a byte of the log.
//
// # The in-flight overlay
//
// Between Prepare and Apply an entry is in flight, and a client pipelines
// up to five requests: the second must pass Prepare before the first has
// applied. So the leader keeps, beside the applied producer state, a
// forecast per producer with batches in flight: its state once they
// apply, in-flight batches marked by offset -1 (producer.go). Prepare
// checks against the forecast and extends it; Apply retires what it
// applies (filling in the offsets) and drops a producer's forecast when it
// refuses one of its batches, since what was prepared after it will be
// refused too. ResetPending drops the whole overlay when leadership is
// lost, and a Prepare in a higher leader epoch does so itself; a Prepare
// in a lower epoch than the last is NotLeaderForPartition.
//
// The overlay is only a forecast. The applied state is the truth, and
// Apply checks against it alone: a retry proposed twice (by two leaders,
// or after a reset) is found a duplicate at apply, on every replica alike,
// and skipped without writing. A retry that reaches Prepare while its
// first attempt is in flight gets ErrInFlight (REQUEST_TIMED_OUT, as
// Kafka answers a produce written but not yet replicated): retriable, and
// the next retry, after the first applied, is a duplicate with the
// original offsets.
//
// # Verification guards
//
// A transactional produce that would begin its producer's transaction is
// verified with the transaction coordinator by the wire layer; the leader
// hands out a guard first (StartTxnVerification), a marker for the
// producer ends it (for a version 1 guard of the marker's epoch or older,
// a version 2 guard of an older epoch), and the append (PrepareVerified)
// that would begin the transaction needs a guard in force, else
// InvalidTxnState; a transaction with a marker in flight (prepared, not
// applied) counts as ended. So a produce verified before its transaction ended
// cannot open a transaction after the marker that nobody ends
// (txn_verify.go). The group coordinator's TxnOffsetCommit batches are
// verified the same way (PrepareVerifiedAsCoordinator): as they are not in
// the overlay, their transaction counts as under way only once applied,
// and their guard stays in force until a marker ends it. Guards are
// leader memory, kept beside the overlay and dropped with it; they decide
// at Prepare only, never at Apply.
//
// # Producer expiry
//
// The state of a producer with no transaction under way is removed once
// the partition's clock is producer.id.expiration.ms past its last
// timestamp (expire.go). The clock is the largest timestamp in the log,
// the same on every replica and after any restart, and sweeps run when it
// crosses a multiple of a step derived from the expiration: Apply's
// decisions stay identical on every replica, which a wall clock would
// break.
//
// # Invariants
//
//   - LogStart <= LSO <= HWM <= LEO. In durable mode HWM <= synced <= LEO:
//     nothing is visible to a consumer or acknowledged before it is on
//     stable storage.
//   - HWM only grows; it is an atomic, raised by a monotonic max
//     (advanceHWM), so Read never takes a lock to bound itself.
//   - HWM lies on a batch boundary (it is a log end or synced offset).
//   - Producer state describes exactly the batches in the log: staged
//     changes are committed only after log.Append succeeded, with their
//     transaction events (commitProducers). The in-flight overlay is
//     separate and never read by Apply.
//   - LSO <= HWM at every instant: txnState stores the LSO from an HWM it
//     loaded, the HWM only grows, and Offsets loads the LSO first.
//   - An ongoing transaction's first batch is at or above the LSO, and so
//     never removed by retention or compaction.
//   - A producer is in the overlay only while it has batches in flight.
//   - A producer's state leaves the applied state only by expiry, and
//     never while its transaction is under way.
//   - Every high watermark advance closes the notifier's changed channel
//     (made lazily by the next WaitCommitted, so unwatched appends
//     allocate nothing) and signals every registered Waiter, so no wait
//     polls.
//
// # Lock order
//
// cleanupState.cleanMu (one Compact at a time; held for the whole pass),
// then Replica.mu (the single writer: Append, Prepare, Apply,
// ResetPending, Close, Delete, SetConfig,
// EnforceRetention, DeleteRecordsBefore, and Compact's swap of each cleaned
// group; guards the producer state and cfg), then the log's own locks, then txnState.mu (the ongoing and
// not yet replicated transactions; a leaf taken by Apply and by
// advanceHWM, never while taking another), then notifier.mu (guards the waiter set
// and the changed channel): log.Sync, called by Append in durable mode
// without a Flusher, runs OnSynced and so takes notifier.mu inside the
// log's sync lock. The flusher goroutine, through OnSynced, takes only
// notifier.mu, briefly, and never blocks on Replica.mu: a slow append never
// delays another partition's sync round. Readers (Read, Offsets,
// OffsetForTimestamp, MaxTimestamp) and AdvanceHighWatermark take no lock
// of ours.
//
// # Glossary
//
//   - LEO: log end offset, the offset the next appended record gets
//     (log.NextOffset).
//   - HWM: high watermark, the first offset not yet committed; consumers
//     read below it. Here: the LEO, or the synced offset in durable mode;
//     later the replication commit index.
//   - LSO: last stable offset, the first offset of the oldest unstable
//     transaction (open, or with its marker not yet below the HWM), or
//     the HWM when lower; bound of read_committed fetches.
//   - Marker: a control batch ending a producer's transaction (COMMIT or
//     ABORT), written by the partition leader at the coordinator's request
//     (WriteTxnMarkers).
//   - PID: producer id, assigned by InitProducerID; with the producer epoch
//     and per-batch sequence numbers it makes retries idempotent.
//   - Log start offset: the first offset still stored (retention moves it).
//   - Entry: one produce request as the leader accepted it (entry.go).
//   - In flight: prepared by this leader and not yet applied.
//
// # Non-obvious
//
//   - Duplicate detection remembers only the last five batches of each
//     producer (Kafka's window, matching the five in-flight requests a
//     client may have). A retry of an older batch is an out-of-order
//     sequence, not a duplicate; so is any retry after an epoch bump.
//   - A request that mixes retried and new batches is InvalidRecord: the
//     single AppendResult cannot describe both. Clients send one batch per
//     partition, so only a broken client does this.
//   - The snapshot is stale the moment the log changes after it. Open
//     deletes it (and syncs the directory) right after loading it: a crash
//     before the next clean Close rebuilds from the log, which is always
//     right. Open also trusts a snapshot only if the log still holds the
//     batch that ended at the snapshot's offset, same base offset and CRC
//     (the anchor), and covers no more than the log holds.
//   - The snapshot covers the applied batches only (appliedEnd), not the
//     log end: a replicated replica's log may hold batches Raft stored but
//     has not applied (a follower behind on the commit index), which the
//     next Open replays from the log like any batch after the snapshot.
//   - Producer state is rebuilt from batch headers alone (no decoding), so
//     a crash costs a header scan of the log, not a full read.
//   - Duplicates answer with the original offsets and nothing is written;
//     under LogAppendTime with the original append time.
//   - An entry that mixes new batches with retries is InvalidRecord at
//     apply too, so an entry holding a plain (non-idempotent) batch that
//     is proposed twice is written twice, as Kafka writes a plain retry
//     twice: only idempotent batches are deduplicated.
//   - Prepare's Entry aliases the request bytes, and Apply stamps them in
//     place. The bytes given to Apply must be the caller's own: never a
//     raft.Log's Data that the log cache, the store or a transport may
//     still be reading, and never a request buffer that is reused.
//   - Proposals must reach Raft in Prepare order: the overlay assumes it,
//     and a reordered pair is refused at apply (out of order), not
//     written wrongly.
//   - A new leader must apply everything of earlier terms (a Raft
//     barrier) before its first Prepare: Prepare checks against the
//     applied state, and with ApplyStored a batch is in the log before it
//     applies, so a retry proposed twice would be stored twice
//     (replication/raftgroup waits for the barrier).
//   - ErrCorruptEntry from Apply is not deterministic in general (a
//     damaged local copy): Apply checks the batches for structure only;
//     their CRCs were checked by Prepare.
//   - LogAppendTime rewrites the max timestamp and so recomputes the CRC;
//     base offset and leader epoch lie outside it.
//   - Compact reads and writes without Replica.mu; only each swap takes
//     it, for renames and two directory syncs. Retention racing a clean
//     makes the swap fail with log.ErrSegmentsChanged: the pass ends
//     without moving the checkpoint and the next starts over.
//   - A batch with a valid CRC can still be a poison batch: a payload that
//     does not decompress, or records that do not decode. Stored, it would
//     stop every consumer of the partition at it, so checkRecords decodes
//     every produced batch (CORRUPT_MESSAGE), at a cost make bench
//     measures (BenchmarkAppendRecordCheck); the keyless check of
//     compacted topics runs in the same pass, so a batch is decompressed
//     once. Package record is the one codec of records and batches.
//   - The timestamp bounds (KIP-937) check only a batch's base and max
//     timestamps, not every record, so no batch is decoded for them.
//   - Config() is lock-free (an atomic copy); Append reads cfg under mu.
//   - Producer ids are never expired yet (producer.id.expiration.ms): the
//     state grows with the number of distinct producers.
//   - A marker refused at ApplyStored (possible only if Prepare's forecast
//     was wrong) is already in the segment log: the producer state skips
//     it, and the error goes to the proposer; a rebuild from the log would
//     replay it without checks. Prepare's forecast check makes this
//     unreachable in practice, as for idempotent batches.
//   - DeleteRecords may move the log start past an open transaction's
//     first offset (Kafka bounds it by the HWM only): Offsets clamps the
//     LSO to the log start.
package partition
