// Package log is the segmented, append-only log of one partition replica:
// the record batches, their offset and time indexes, and everything needed
// to keep them on disk — append, read, truncate, roll, recovery after a
// crash, and group-committed durability (Flusher).
//
// It owns the files of one partition directory and nothing else. It does not
// own the high watermark, leader epochs, producer state or retention policy
// (package partition does); it never decodes records, never decompresses,
// and never assigns offsets: the caller writes base offsets into the batch
// headers (SetBaseOffset) before Append. It imports only the standard
// library and zap. Never import the standard library "log" here: in this
// repository log always means the commit log.
//
// # Files
//
// A partition directory holds segments, each named by its base offset (the
// offset of its first batch) zero-padded to 20 digits, plus an optional
// clean-shutdown marker:
//
//	00000000000000000000.log        batches, verbatim
//	00000000000000000000.index      sparse offset -> position
//	00000000000000000000.timeindex  sparse max timestamp -> offset
//	00000000000000004711.log        next segment: base offset 4711
//	...
//	.clean                          written by Close after the final sync,
//	                                removed (durably) by Open
//	.recovery-point                 segments based below it are synced
//	                                (checkpoint.go has the format)
//	.log-start-offset               log start offset set by
//	                                AdvanceStartOffset (DeleteRecords),
//	                                possibly inside a segment, or by
//	                                RestartAt
//	.cleaner-checkpoint             the cleaner's first dirty offset and
//	                                earliest tombstone delete horizon
//	00000000000000000000.log.cleaned  a segment being cleaned (also
//	                                .index.cleaned, .timeindex.cleaned)
//	00000000000000000000.log.swap   a cleaned segment whose swap committed
//	                                (clean.go has the protocol)
//
// A .log file is whole batches back to back (batch.go has the batch
// layout); offsets are contiguous across batches and across segments:
//
//	+---------------------+---------------------+-- - -
//	| batch base=B len=L1 | batch base=B+n1 ... |
//	+---------------------+---------------------+-- - -
//	0                     L1+12
//
// An .index entry (8 bytes, big-endian) is written every IndexIntervalBytes
// of log, before the batch that crosses the interval:
//
//	+-----------------------------+-----------------------------+
//	| relative offset uint32      | position uint32             |
//	| (batch base - segment base) | (byte offset in the .log)   |
//	+-----------------------------+-----------------------------+
//
// A .timeindex entry (12 bytes, big-endian) is written together with each
// .index entry, so entry i of both files names the same batch:
//
//	+-----------------------------+-----------------------------+
//	| max timestamp int64 (ms)    | relative offset uint32      |
//	| largest batch MaxTimestamp  | (same as the .index entry)  |
//	| in the segment so far       |                             |
//	+-----------------------------+-----------------------------+
//
// # Invariants
//
//   - Only the newest (active) segment is written. Segments are rolled before
//     an append that would take the active one past SegmentBytes (unless it
//     is empty) or once it is SegmentAge old, so positions and relative
//     offsets fit uint32.
//   - Every segment's next offset is the next segment's base offset. Base
//     offsets of batches strictly increase; before compaction they are
//     contiguous and a segment's first batch has its base offset, after it
//     there may be gaps inside a segment (removed batches), never between
//     segments: the cleaner keeps each cleaned group's last batch (emptied
//     if need be).
//   - The log start offset is the first segment's base or the stored
//     .log-start-offset, whichever is higher; reads below it are
//     ErrOffsetOutOfRange. It only grows, except that a stored log start
//     above the recovered log end restarts the log empty at it (Kafka's
//     truncateFullyAndStartAt).
//   - Index entries strictly increase in relative offset and position and
//     point at batch starts; time index timestamps never decrease.
//   - The index files are derived data: they are not synced per append and
//     Open rebuilds any that fail its checks. They are synced when their
//     segment is sealed (rolled) and at Close, before the clean marker.
//   - SyncedOffset never exceeds what is on stable storage: a sync captures
//     the log end offset before syncing, and TruncateTo lowers it.
//   - A batch that fails VerifyBatch in a recovered region is never served:
//     recovery truncates the segment there and deletes later segments.
//
// # Recovery
//
// Open lists the directory, ignores stray files (logging them), removes
// index files without a .log, and recovers each segment oldest first:
//
//   - After an unclean shutdown (no .clean marker), the newest segment and
//     every segment based at or above the recovery point (rolled since the
//     last sync that covered a roll): every batch is verified (VerifyBatch:
//     length, magic, CRC-32C, record count) and must continue the offsets;
//     the .log is truncated at the first torn or corrupt batch and both
//     indexes are rebuilt. Without a readable recovery point every segment
//     is verified.
//   - Every other segment, and all of them after a clean Close: the index
//     files are loaded and checked (whole entries, strictly increasing, no
//     position past the .log, first and last entries naming a batch with
//     that offset); the batches after the last entry are verified. Indexes
//     that fail a check are rebuilt by verifying the whole segment.
//   - A bad batch in an older segment truncates it there and deletes every
//     later segment (logged at Error): the log must stay contiguous. So does
//     a segment whose base offset does not follow the previous segment.
//
// Batches of a segment below the recovery point, before its last index
// entry, are not re-verified on every start (that would read the whole log):
// they were synced with their indexes when the segment was sealed, as
// Kafka trusts segments below its recovery-point-offset-checkpoint. After
// an unclean shutdown the recovered files are synced, so SyncedOffset
// starts at NextOffset, and Open moves the recovery point to the newest
// segment.
//
// # Retention, DeleteRecords and compaction
//
// Segments describes the segments; RemoveSegmentsBefore deletes whole
// sealed segments below an offset, oldest first. AdvanceStartOffset
// (DeleteRecords) stores a log start offset durably, then removes the
// segments wholly below it. RestartAt (replication: a replica whose
// leader's retention deleted all it lacks) stores a log start offset
// above the log end the same way, then replaces every segment with an
// empty one at it; AppendCompacted (the same replica copying a compacted
// leader's batches) appends across offset gaps after raising the stored
// compacted end past them. The policy (retention.ms, retention.bytes,
// DeleteRecords, what compaction keeps) is the caller's: the log never
// decodes records.
//
// For compaction the log offers mechanism only: ReadSegment reads a
// segment's verified batches from a snapshot, CreateCleanedSegment writes
// a replacement under .cleaned names (no lock, appends go on), and
// ReplaceSegments swaps it in for a run of consecutive sealed segments:
// .cleaned renamed to .swap (the commit point, made durable), the replaced
// segments removed, .swap renamed over the first one's files, a new state
// published. Readers holding the old segments keep reading them. Open
// removes .cleaned files and completes a committed swap, so a crash leaves
// either the old or the new segments. CleanerCheckpoint stores the
// cleaner's progress; TruncateTo lowers it.
//
// # Concurrency
//
// One writer (the caller serialises Append, TruncateTo, RestartAt, Close and Delete)
// publishes immutable snapshots (state) through an atomic.Pointer; readers
// (Read, BatchHeaders, FindTimestamp, MaxTimestamp and the offset getters)
// load one and never take a lock the writer holds, as in hashicorp/raft-wal.
// A snapshot's index slices are shared: the writer only appends past their
// length and copies before shrinking them.
//
// Open files do not grow with the number of segments. A segment is pinned,
// its three files open, while it is active, rolled but not yet synced, or
// a cleaned segment being written; the writer and syncs use those files.
// Once sealed and synced it is unpinned: its index files close (their
// entries are in the snapshot) and its .log joins a FileCache shared by
// every Log of the process (Options.FileCache, DefaultFileCache), which
// keeps at most its limit of sealed files open and closes the least
// recently read (CLOCK) to open another. Open unpins each segment once
// the next one is recovered, so it too keeps a bounded number open.
//
// Readers never use the pinned files: openLog gives them a handle that is
// reference-counted (the segment's pointer to it, a pin, each read); the
// last release closes the file, so neither eviction nor TruncateTo, Close
// or Delete closes a file under a reader. Segments are reference-counted
// too: the Log holds one from creation until it removes or closes the
// segment, and syncs hold one while they use the pinned files. A segment
// removed or replaced is retired first — out of the cache, and openLog
// refuses to open its name (errRetry) — and only after a state without it
// is published, so a reader that had not opened it loads the new state;
// one that had keeps reading the old file.
//
// Lock order: Flusher.mu is never held while taking another lock;
// Log.syncMu (one sync or truncation of a log at a time; a flusher round
// holds it for every log in the round) comes before Log.pendingMu (the list
// of rolled but unsynced segments). Append takes neither syncMu nor
// Flusher.mu for longer than a map insert, so it never waits for an fsync.
// A segment's openMu comes before FileCache.mu; files are closed after
// FileCache.mu is released, and neither is held while taking syncMu or
// pendingMu.
//
// The Flusher's goroutine owns the sync loop: it waits on a condition for
// dirty logs, takes the whole dirty set, syncs the files of each log
// concurrently, then advances each log's synced offset and calls OnSynced.
// Appends made during a round join the next one (group commit).
//
// # Glossary
//
//   - LEO, log end offset: NextOffset, the offset the next batch gets.
//   - Log start offset: StartOffset, the first offset still stored.
//   - HWM, high watermark: the offset below which batches are replicated
//     (committed); partition owns it and passes it to Read as MaxOffset.
//   - LSO, last stable offset: the HWM limited by open transactions;
//     read_committed fetches pass it as MaxOffset.
//   - Synced offset: the offset below which batches are on stable storage.
//   - Base offset: the offset of a batch's first record, or of a segment's
//     first batch. Relative offset: an offset minus its segment's base.
//   - Segment: one .log file with its two index files. Active segment: the
//     newest, the only one written.
//   - Roll: sealing the active segment and starting a new one. Sealed
//     segment: any before the active one.
//   - Pinned: a segment whose three files are held open for its writer and
//     syncs (active, rolled and not yet synced, or being cleaned).
//     Retired: removed or replaced; its files are no longer opened by name.
//
// # Non-obvious
//
//   - The CRC covers bytes 21 onward only, so base offset and leader epoch
//     may be rewritten in place without recomputing it.
//   - A batch's last offset (base + lastOffsetDelta), not its record count,
//     decides the next base offset: after compaction a batch may hold fewer
//     records than offsets.
//   - The batch containing Read's Offset may start below it; consumers skip
//     the records before their offset. MaxOffset cuts by a batch's last
//     offset, so a batch straddling the high watermark is not served.
//   - A reader that loaded a snapshot before a TruncateTo may read bytes that
//     a later Append wrote at the same positions: it gets whole, valid
//     batches, but possibly newer ones than its snapshot promised. Callers
//     that truncate (replication, on a follower) must not rely on reads that
//     race the truncation.
//   - A crash during TruncateTo may leave the removed batches on disk (the
//     file truncation was not yet durable); the caller must repeat the
//     truncation after Open. Later segments are removed first, so what
//     remains is always a prefix.
//   - After a failed fsync the page cache may have dropped the data while
//     reporting success later (fsyncgate): the Log refuses further appends
//     and syncs; reopen it to recover from what is on disk.
//   - IsStorageError tells a failed filesystem operation (an *fs.PathError
//     or errno at any depth) from every other error: upper layers answer
//     it KAFKA_STORAGE_ERROR. FaultFS fails chosen operations on chosen
//     paths with such errors, for tests and for debug.fault.injection.
//   - TruncateTo lowers the recovery point (durably) when it truncates a
//     segment below it: otherwise segments rolled afterwards would count as
//     synced after a crash.
//   - The clean marker must be removed durably before the first append,
//     otherwise a power cut could resurrect it over stale index files.
//   - A segment found on disk counts as created at Open for SegmentAge.
//   - The log start offset may lie inside a batch: Read at it returns the
//     whole batch, records below it included, as Kafka does; consumers skip
//     them. FindTimestamp and MaxTimestamp may return a batch below it.
//   - A cleaned segment keeps its first replaced segment's name (base),
//     though its first batch may start later; the replaced range is known
//     on recovery from the .swap's last batch, which ends exactly where the
//     replaced segments ended.
//   - SetConfig takes effect for SegmentBytes and SegmentAge at the next
//     append, for IndexIntervalBytes at the next roll: the active
//     segment's index spacing never changes midway.
//   - A SyncObserver (Flusher.SetSyncObserver, for metrics) runs on the
//     flusher goroutine while the syncMu of the log it reports is held: it
//     must not block and must not call into any Log.
//   - OnSynced runs on the flusher goroutine (or the caller of Sync/Close)
//     while the syncMu of its log, and in a flusher round of other logs too,
//     is held (that keeps the calls in order): it must not call Sync,
//     TruncateTo, Close or Delete of any log.
//   - A read that a byte limit stopped before the end of its segment hints
//     the file (WillNeeder: posix_fadvise WILLNEED) to fetch as many bytes
//     again from where it stopped: a replaying consumer asks for them next,
//     and on a cold page cache the disk then reads them while the current
//     ones are sent. Measured on the 2-core bench machine: cold replay about
//     10% faster and its CPU per GB halved; warm replay unchanged.
//   - A reader holding an evicted file keeps it open until its read ends,
//     so a process has at most the cache's limit plus the reads in flight
//     of sealed files open. A retired segment's name may already belong
//     to another file (compaction renames the cleaned segment over the
//     first one it replaces): opening by name after retiring would read
//     the wrong bytes, hence errRetry and the publish-then-retire order
//     (ReplaceSegments publishes right after its commit point).
//   - A sealed file that cannot be opened for EMFILE or ENFILE (the
//     process is at its limit, say with a peak of connections) is
//     retried once after the cache closes every file no read holds: a
//     failed read fails the replica (replication treats it as a disk
//     error), so a transient shortage must not reach it when the cache
//     can give descriptors back.
//   - A rolled segment keeps its files open until a sync covers it: the
//     sync must go through descriptors open since the writes, or a write
//     error reported on an earlier close could be missed. A Log without a
//     Flusher keeps them until Sync or Close.
//   - ReadRequest.Buffer lets the caller (wire's buffer pool) provide the
//     memory a read fills, so a fetch neither allocates nor zeroes it.
package log
