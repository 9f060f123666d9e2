package partition

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

var (
	// ErrClosed reports use of a closed Replica, and is what WaitCommitted
	// returns when the replica closes while it waits.
	ErrClosed = errors.New("partition: closed")
)

// Replica is one partition replica: its log, high watermark, log start
// offset, leader epoch, idempotent producer state and fetch waiters. Safe for
// concurrent use: appends are serialised inside, reads never block appends.
type Replica struct {
	// Immutable after Open, but for cfg: SetConfig replaces it under mu.
	dir       string
	topic     string
	partition int32
	cfg       Config
	durable   bool
	syncEach  bool // durable without a Flusher: Append syncs itself
	fs        log.FS
	now       func() time.Time
	logger    *zap.Logger
	log       *log.Log

	// epoch is the leader epoch stamped into appended batches.
	epoch atomic.Int32
	// epochs maps leader epochs to their first offsets (epoch.go).
	epochs epochCache

	// hwm is the high watermark: every offset below it is committed and
	// readable. It only grows (monotonic max in advanceHWM), so readers load
	// it without a lock. Invariant: hwm <= log.NextOffset(), and in durable
	// mode hwm <= log.SyncedOffset(); with externalHWM also hwm <= hwmLimit.
	hwm atomic.Int64
	// externalHWM is Options.ExternalHighWatermark: the owner bounds the
	// high watermark with AdvanceHighWatermark. Immutable after Open.
	externalHWM bool
	// cleanFloor, when set, bounds retention and compaction below the
	// high watermark (SetCleanFloor).
	cleanFloor atomic.Pointer[func() int64]

	// appliedEnd is the offset after the last batch the producer state
	// accounts for: the log end at Open, then advanced by Apply and
	// ApplyStored; Close's snapshot covers up to it. Guarded by mu.
	appliedEnd int64
	// hwmLimit is the owner's bound on the high watermark with
	// externalHWM; it only grows (monotonic max in AdvanceHighWatermark).
	// Unused otherwise.
	hwmLimit atomic.Int64

	// closed is set once by Close; readers check it without a lock.
	closed atomic.Bool

	// mu is the single-writer lock: Append, Prepare, Apply, Close and
	// Delete hold it while they touch the log's end or the producer state.
	// Lock order: mu before notify.mu; the flusher's OnSynced takes only
	// notify.mu.
	mu sync.Mutex
	// producers is the idempotent producer state; guarded by mu.
	producers producerStates
	// headers is the reusable scratch of Prepare, Apply and Append for
	// parsed batch headers; guarded by mu.
	headers []log.BatchHeader
	// pendingEpoch is the leader epoch of the latest Prepare, -1 before
	// the first: the in-flight overlay belongs to it. Guarded by mu.
	pendingEpoch int32

	// txns holds the unstable transactions, the LSO and the aborted
	// transaction index (txn_state.go).
	txns txnState

	notify notifier

	// cleanup holds the live config, retention and compaction state
	// (cleanup.go).
	cleanup cleanupState
}

// Open opens or creates the replica stored in dir. Producer state is
// restored from a snapshot written by Close and from the batches after it
// (all batches when no snapshot exists).
func Open(dir, topic string, partition int32, cfg Config, opts Options) (*Replica, error) {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := opts.Logger
	if base == nil {
		base = zap.NewNop()
	}
	base = base.With(zap.String("topic", topic), zap.Int32("partition", partition))
	r := &Replica{
		dir:       dir,
		topic:     topic,
		partition: partition,
		cfg:       cfg,
		durable:   opts.Durable,
		syncEach:  opts.Durable && opts.Flusher == nil,
		fs:        opts.FS,
		now:       opts.Now,
		logger:    base.Named("partition"),
		producers: newProducerStates(),
	}
	r.externalHWM = opts.ExternalHighWatermark
	r.pendingEpoch = -1
	if r.fs == nil {
		r.fs = log.OSFS{}
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.notify.init()
	r.txns.init()
	r.cleanup.config.Store(&cfg)

	logOpts := log.Options{
		Logger:  base,
		Now:     r.now,
		FS:      r.fs,
		Flusher: opts.Flusher,
	}
	switch {
	case r.durable && r.externalHWM:
		logOpts.OnSynced = func(synced int64) { r.advanceHWM(r.localHWMBound(synced)) }
	case r.durable:
		logOpts.OnSynced = r.advanceHWM
	}
	l, err := log.Open(dir, cfg.Log, logOpts)
	if err != nil {
		return nil, fmt.Errorf("partition: open log of %s-%d in %s: %w", topic, partition, dir, err)
	}
	r.log = l

	restored, err := r.loadProducerState()
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	if err := r.rebuildEpochs(); err != nil {
		_ = l.Close()
		return nil, err
	}

	// Everything recovered is committed: in single-node mode the log's
	// recovery keeps only what reached the file (replication will set the
	// high watermark from its own commit index), and log.Open has synced
	// what an unclean shutdown left in the page cache, so HWM <= synced
	// holds in durable mode too.
	r.hwm.Store(l.NextOffset())
	r.hwmLimit.Store(l.NextOffset())
	if r.externalHWM {
		// The owner knows what is committed (the Raft commit index); the
		// log's tail may not be. Nothing is visible until it says.
		r.hwm.Store(l.StartOffset())
		r.hwmLimit.Store(l.StartOffset())
	}
	r.appliedEnd = l.NextOffset()
	r.txns.update(&r.hwm)

	r.logger.Debug("replica opened",
		zap.String("dir", dir),
		zap.Int64("log-start-offset", l.StartOffset()),
		zap.Int64("log-end-offset", l.NextOffset()),
		zap.Int("producers", r.producers.len()),
		zap.Bool("producer-snapshot-used", restored.fromSnapshot),
		zap.Int("batches-replayed", restored.replayed),
		zap.Duration("took", time.Since(start)))
	return r, nil
}

// snapshotPath is where Close writes the producer state snapshot.
func (r *Replica) snapshotPath() string { return filepath.Join(r.dir, snapshotFile) }

// LeaderEpoch returns the epoch written into appended batches.
func (r *Replica) LeaderEpoch() int32 { return r.epoch.Load() }

// SetLeaderEpoch sets the epoch for later appends (replication calls it on
// leadership change). Default 0.
func (r *Replica) SetLeaderEpoch(epoch int32) { r.epoch.Store(epoch) }

// Offsets is a consistent view of a replica's offsets.
//
// LogStart <= LastStable <= HighWatermark <= LogEnd always holds.
type Offsets struct {
	LogStart, HighWatermark, LastStable, LogEnd int64
}

// Offsets returns the replica's current offsets.
func (r *Replica) Offsets() Offsets {
	// Each value only grows, and the invariant holds at every instant, so
	// loading them from the smallest to the largest gives a view in which
	// the invariant holds too: a value loaded later can only be larger.
	// The LSO is stored no higher than the high watermark of its time,
	// and the high watermark only grows: loaded first, it stays below.
	o := Offsets{LogStart: r.log.StartOffset()}
	o.LastStable = r.txns.lso.Load()
	o.HighWatermark = r.hwm.Load()
	o.LogEnd = r.log.NextOffset()
	// Retention never passes the last stable offset, but DeleteRecords
	// may pass an open transaction's start: clamp so a caller can rely
	// on the invariant whatever the log does.
	if o.LogStart > o.HighWatermark {
		o.LogStart = o.HighWatermark
	}
	o.LastStable = max(o.LastStable, o.LogStart)
	return o
}

// Close writes the producer state snapshot and closes the log. Waiters are
// signalled; later calls fail.
//
// The log is closed (and so synced) before the snapshot is written: the
// snapshot never describes offsets the log could lose. When closing the log
// fails no snapshot is written; the next Open rebuilds from the log.
func (r *Replica) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	r.closed.Store(true)
	defer r.notify.close()

	// The producer state describes the batches applied, up to appliedEnd.
	// A replicated replica's log may hold more: batches its Raft log store
	// wrote that Raft has not applied yet (a follower that has not learned
	// the commit index). The snapshot covers only what the state
	// describes, so the next Open replays the rest from the log.
	covered := min(r.appliedEnd, r.log.NextOffset())
	snap, snapErr := r.snapshotOf(covered)
	if err := r.log.Close(); err != nil {
		return fmt.Errorf("partition: close log of %s-%d: %w", r.topic, r.partition, err)
	}
	if snapErr != nil {
		return fmt.Errorf("partition: close %s-%d: %w", r.topic, r.partition, snapErr)
	}
	if err := writeSnapshot(r.fs, r.dir, snap); err != nil {
		return fmt.Errorf("partition: close %s-%d: %w", r.topic, r.partition, err)
	}
	r.logger.Debug("replica closed",
		zap.Int64("snapshot-covers", covered),
		zap.Int("producers", r.producers.len()))
	return nil
}

// Delete closes the replica and removes its directory.
func (r *Replica) Delete() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	r.closed.Store(true)
	defer r.notify.close()

	if err := r.log.Delete(); err != nil {
		return fmt.Errorf("partition: delete log of %s-%d: %w", r.topic, r.partition, err)
	}
	// The log removes its directory, which is ours too; remove whatever of
	// ours may remain (a snapshot left by a failed load, a temp file).
	if err := r.fs.RemoveAll(r.dir); err != nil {
		return fmt.Errorf("partition: delete %s-%d directory %s: %w", r.topic, r.partition, r.dir, err)
	}
	r.logger.Info("replica deleted", zap.String("dir", r.dir))
	return nil
}
