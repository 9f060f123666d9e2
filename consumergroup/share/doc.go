// Package share is the data plane of share groups (KIP-932, KIP-1191) on
// a partition's leader: the share-partitions, which hand a partition's
// records out one by one to the members of a share group under a
// time-limited lock and track each record until it is acknowledged, and
// the share sessions of ShareFetch and ShareAcknowledge (wire/78, 79).
//
// It does not own membership or assignment (consumergroup: share group
// heartbeats), nor durable storage: every durable change goes through a
// sharestate.Persister to the share coordinator, which keeps the states in
// __share_group_state. Records come from the data partition's log
// (DataPartition, a *replication.Partition); dead letters go out through a
// DeadLetterWriter (cmd/sluice: the cluster's append when this node leads
// the dead-letter partition, a producer otherwise).
//
// # A share-partition
//
// One per share group and data partition, made on first use on the
// partition's leader. Offsets below the start offset (SPSO) are complete;
// the records from SPSO to the end offset (SPEO, exclusive) are in flight,
// each in one state with a delivery count; offsets at or after SPEO were
// never acquired.
//
//	    complete          in flight (records[])             never acquired
//	──────────────────┬──────────────────────────────────┬────────────────▶
//	                 SPSO                               SPEO
//
//	           acquire (count+1, lock until now+lock duration)
//	Available ───────────────────────────────────────────▶ Acquired(member)
//	    ▲  release, lock expiry, session close (count < limit)  │
//	    └───────────────────────────────────────────────────────┤
//	                      accept                                │
//	Acknowledged ◀──────────────────────────────────────────────┤
//	                      reject; release/expiry at the limit;  │
//	Archived ◀────────────gap (no record at the offset)─────────┘
//
// Acquire reads the log from the first available offset (in flight, or
// SPEO) and takes whole stored batches: every available offset of each
// batch until MaxRecords is reached by a batch or SPEO - SPSO reaches
// group.share.partition.max.record.locks (Kafka's default 2000) within
// one; that batch is taken whole (Kafka too checks its in-flight limit
// before fetching, not within batches) up to 8 times the limit
// (crossingLimit: in-flight state stays bounded whatever a compressed
// batch holds), except in ShareFetch's record-limit mode (KIP-1206),
// which takes exactly MaxRecords and stops at the limit. A full share-partition (at the limit, nothing in flight
// available) answers without reading the log. The response carries those batches and the acquired
// runs with their delivery counts, and the consumer keeps only the
// acquired records. Control batches, offsets with no record (compaction)
// and, under share.isolation.level=read_committed (reading to the last
// stable offset like a read_committed Fetch), the batches of aborted
// transactions are archived as they are passed. SPSO moves over complete
// records at its head; when the log start passes SPSO (retention,
// DeleteRecords), SPSO follows it.
//
// A record acquired share.delivery.count.limit times and not accepted
// (released, or its lock expired) is archived; with
// errors.deadletterqueue.topic.name set it is written to that topic first
// (reject writes at once). A dead letter carries KIP-1191's provenance
// headers __dlq.errors.topic, .partition, .offset, .group,
// .delivery.count and .message (Kafka's texts: "Offset rejected by
// client.", "Offset delivery count exceeded the threshold."), after the
// original key, value and headers when
// errors.deadletterqueue.copy.record.enable is set (else key and value
// are null); it goes to partition source partition mod the dead-letter
// topic's partition count, with the original timestamp. As KIP-1191
// (accepted; Kafka 4.4) says, the topic's name must start with the
// broker config errors.deadletterqueue.topic.name.prefix ("dlq." by
// default; the cluster refuses a group config naming another with
// INVALID_CONFIG), and a missing topic is created on its first dead
// letter (num.partitions partitions, default.replication.factor
// replicas) only when the broker config
// errors.deadletterqueue.auto.create.topics.enable is true (default
// false; the DeadLetterWriter, cmd/sluice, does it, with the topic config
// errors.deadletterqueue.group.enable=true). A topic is written only when
// it sets errors.deadletterqueue.group.enable=true, so its owner decides
// whether it may serve as one. When the topic does not exist and is not
// created, or does not set that config (UNKNOWN_TOPIC_OR_PARTITION from
// the writer), the records are archived without dead letters and a
// warning is logged; any other
// failure to write them fails the acknowledgement (or lock expiry), and
// the records stay as stored, to be delivered and dead-lettered again,
// but only after a backoff (deadletter_backoff.go: held, 0.5 s doubling
// to 30 s, their delivery count kept), not in a tight loop.
//
// Renew (type 4, KIP-1222, ShareFetch/ShareAcknowledge v2 with
// IsRenewAck) extends an acquired record's lock by the lock duration; it
// changes nothing durable.
//
// # Durability
//
// Acquired is never stored. Every other change (an acknowledgement, a
// release, a lock expiry, an archive, a move of SPSO) is written through
// Persister.Write, with the loaded state epoch and the partition's leader
// epoch, before the request that made it is answered; dead letters are
// written before the archive that records them (so a dead letter may be
// written twice, never lost). Writes are group-committed per
// share-partition: one is in flight at a time, the share-partition's
// lock is released while it is, and the next write carries every change
// made meanwhile, each request answered once the write holding its change
// is stored (measured: 4 share consumers on 2 partitions read 2.3 times
// as fast as with one write per change). On first use the state is Read with the
// partition's leader epoch (fencing older leaders' writes); a state never
// initialized is Initialized at share.auto.offset.reset (earliest: the log
// start; latest: the high watermark; by_duration: the first offset at or
// after now minus the duration, else the high watermark). A failed write
// drops the share-partition: the next use reads the stored state again,
// so records whose change was not stored are as they were stored
// (acquired ones available again with their stored delivery counts), as
// after a failover. FENCED_STATE_EPOCH (an admin reset or deleted the
// group's offsets) reaches the client as INVALID_RECORD_STATE, and a
// share-partition holding no acquired records reads the stored state
// epoch (ReadSummary) before acquiring when it has not for 5 s, so a
// reset of an idle group is noticed before anything stale is handed out;
// FENCED_LEADER_EPOCH (a newer leader read the state) as
// NOT_LEADER_OR_FOLLOWER. A share-partition whose data partition is led
// elsewhere, or in another leader epoch, is dropped at its next use or
// lock-expiry timer.
//
// A delivery count is stored when a record is released or expires, not
// when it is acquired: a record acquired and lost to a failover before
// its lock expired is delivered again without that delivery counted, as
// in Kafka.
//
// # Idle share-partitions
//
// A share-partition unused for Config.IdleTimeout (5 min; no request
// took it), holding no acquired record and no change not yet stored, is
// dropped from memory (evict.go; looked for every quarter of the
// timeout, at most every minute), so a broker serving many short-lived
// groups does not keep one per group and partition ever fetched. All it
// knew is stored: its next use reads the stored state again. The
// long-poll channel of a group left with no share-partition is closed
// and forgotten too.
//
// # Sessions
//
// A share session is keyed by group and member id; epoch 0 opens it
// (replacing the member's older session, whose records are released), -1
// closes it and releases the member's acquired records on the session's
// partitions, any other epoch must be the one after the previous
// request's (INVALID_SHARE_SESSION_EPOCH, SHARE_SESSION_NOT_FOUND). At
// most group.share.max.share.sessions are open
// (SHARE_SESSION_LIMIT_REACHED).
//
// A member leaving the share group is not told to the partition leaders:
// membership lives on the group's coordinator (consumergroup), often
// another node, and no request carries it here. What releases a leaving
// member's records is, in order: its share sessions closing (epoch -1,
// which franz-go sends on every leader before its leave heartbeat), its
// connections closing (wire: a session belongs to its connection), and
// at worst its locks expiring. A member removed for missing heartbeats
// (group.share.session.timeout.ms, at least 45 s) has, unless it still
// renews them, lost its locks by then: a lock lasts at most the group's
// share.record.lock.duration.ms from its last renewal, 30 s by default,
// so only a group whose lock is set longer than its session timeout would
// gain from a release on removal, by the difference (at most 15 s).
//
// # Throughput with many consumers
//
// BenchmarkShareFetch (test/bench_share_test.go: 200k 100 B records on 2
// partitions, one in-process node, every record accepted, 2-core test
// machine shared with other work) measured, in records/s and as a ratio
// to the classic consumer of the same run, before and after in one
// session, 1M records with SLUICE_BENCH_SCALE=5. Each figure is one run;
// runs vary, the before ones most (a stall costs 500 ms or not: another
// 4-consumer run before reached 449k):
//
//	                        1 consumer    4 consumers   16 consumers
//	before, 200k records    635k 0.28     156k 0.069    145k 0.064
//	                        470k 0.19     112k 0.044    102k 0.040
//	after,  200k records    797k 0.39     916k 0.44     1.07M 0.52
//	                        1.65M 0.66    1.07M 0.43    1.28M 0.51
//	before, 1M records      341k 0.12     152k 0.055    114k 0.041
//	after,  1M records      1.27M 0.38    1.24M 0.36    1.41M 0.42
//
// Throughput no longer falls as consumers are added. It does not grow
// either, here: the benchmark's producer writes batches of 4000-9000
// records, more than a share-partition's lock window of 2000, so one
// member per partition works at a time, and the clients share the two
// cores with the broker (at 200k records, joining the group is a good
// part of the 4- and 16-consumer times). With 16 KB batches (about 150
// records; not the benchmark's setting) 4 and 16 consumers read 1.1-1.9
// times as fast as one (before: 16 consumers at 0.05-0.11 of classic,
// after 0.22-0.24).
//
// What was measured before (counters in the broker, per run of 200k
// records, and CPU profiles of the 16-consumer run, clients included;
// the process used under half of its two cores: it waited):
//
//   - A member's ShareFetch, sent by franz-go as soon as its previous
//     records are polled and before they are acknowledged, found the
//     window full of its own records and long-polled its whole MaxWait
//     (500 ms) while its acknowledgements waited in its client, stalling
//     every member of the group: 15 (4 consumers) and 49 (16) long polls
//     per run ran out their 500 ms, and a trace of the 4-consumer run
//     showed them waiting so. 64% (4) and 89% (16, 8 members a
//     partition) of acquisitions were empty, most at the full window, the
//     others took 1500 records on average. Now such a request waits at
//     most shareHoldingWait (20 ms, wire/78_share_fetch.go); after all
//     the changes 40% (4) and 66% (16) are empty, mostly waiters woken by
//     a release another member took, and the others take some 5900.
//   - A batch larger than the window went out in pieces of at most 2000
//     records, each piece sending the whole batch (some 1 MB) for the
//     consumer to decode and filter. The batch crossing the limit is now
//     taken whole (as Kafka checks its in-flight limit before a fetch),
//     up to 8 times the limit.
//   - Every long-polling ShareFetch woken by a release read the log from
//     the share-partition's next offset (about 420 KB into a fresh
//     buffer) before finding the window full: Acquire was 29% of the CPU
//     samples of the 16-consumer run, its log reads 18%. A full
//     share-partition now answers before reading (Acquire 6-11%).
//   - Long-poll wake-ups: each release or move of SPSO wakes every
//     waiting ShareFetch of the group; with 16 consumers about 1100 wake-
//     ups per run, 93% acquiring nothing. Left as is: there are 350-430
//     now (fewer, larger acquisitions), each a lock and a check.
//   - State writes: 60-360 a second, 0.4 ms each with one consumer and
//     3-6 ms under the 4- and 16-consumer load; one record and one fsync
//     each (Raft syncs of __share_group_state counted after the changes:
//     one entry each). The group commit above already carries every
//     change made while a write is in flight (20-50 requests per run
//     waited for one), and the coordinator appends without waiting for
//     commits, so share-partitions sharing a __share_group_state
//     partition share Raft's batches. After the changes a write stores a
//     whole acknowledged batch (some 6000 records), 40-50 writes per 200k
//     records: the write path was not the limit and is unchanged.
//   - The share-partition lock was not contended (waits of 0.2-0.4 ms on
//     average).
//
// # Concurrency and lock order
//
// sharePartition.mu guards one share-partition. It is held across
// dead-letter writes and released while a state write is in flight (at
// most one per share-partition, so its durable changes are written in
// order); a request that released it re-checks, once it holds it again,
// that the share-partition was not dropped meanwhile. Manager.mu guards the map of share-partitions and the groups'
// Changed channels and is taken inside sharePartition.mu, never around
// it.
// Sessions.mu is taken alone. The eviction loop copies the map under
// Manager.mu, then takes each sharePartition.mu with TryLock (a held one
// is in use, so not idle) and Manager.mu inside it to drop it. Each share-partition with acquired records
// has one timer, armed for its earliest lock deadline; its callback runs
// under the Manager's WaitGroup and Close waits for it. A release closes
// its group's Changed channel, which the group's long-polling ShareFetches
// wait on alongside the data partitions' waiters.
//
// # Glossary
//
//	SPSO   share-partition start offset
//	SPEO   share-partition end offset
//	lock   an acquisition's deadline (share.record.lock.duration.ms)
//
// # Non-obvious
//
//   - Acknowledgements are checked per batch before any is applied: a
//     batch naming one offset the member does not hold changes nothing.
//   - Expired locks are released before an acknowledgement is applied, so
//     a member acknowledging after its lock expired hears
//     INVALID_RECORD_STATE even when no timer has run yet.
//   - A record available with a delivery count at or above the limit (the
//     limit was lowered) is archived, not delivered, when reached.
package share
