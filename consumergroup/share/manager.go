package share

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup/sharestate"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/configs"
)

// DataPartition is the data partition a share-partition delivers the
// records of: wire's Partition (a *replication.Partition) satisfies it.
type DataPartition interface {
	Read(dst []byte, req partition.ReadRequest) (partition.ReadResult, error)
	Offsets() partition.Offsets
	// Leader returns the leading node and its leader epoch.
	Leader() (node int32, epoch int32)
	OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error)
}

// GroupConfigs resolves a share group's configuration;
// *replication.Cluster satisfies it.
type GroupConfigs interface {
	ShareGroupConfig(group string) configs.ShareGroup
}

// DefaultGroupConfigs serves configs.DefaultShareGroup to every group:
// for a node whose metadata holds no group configs.
type DefaultGroupConfigs struct{}

// ShareGroupConfig returns configs.DefaultShareGroup().
func (DefaultGroupConfigs) ShareGroupConfig(string) configs.ShareGroup {
	return configs.DefaultShareGroup()
}

// Target names the data partition of a share-partition: wire resolves it
// from the request's topic id.
type Target struct {
	TopicID   [16]byte
	Topic     string
	Partition int32
	Data      DataPartition
}

// AcquiredRange is a run of offsets First..Last (inclusive) acquired with
// delivery count DeliveryCount, as ShareFetch's AcquiredRecords say.
type AcquiredRange struct {
	First, Last   int64
	DeliveryCount int16
}

// Acquired is what Acquire took for a member: whole stored batches
// (Records) covering the acquired ranges, which the consumer filters by.
type Acquired struct {
	Records []byte
	Ranges  []AcquiredRange
	// HoldsLocks is set when nothing was acquired because the
	// share-partition holds its most in-flight records
	// (group.share.partition.max.record.locks) and the member holds
	// some of them: its own acknowledgements, which its client sends
	// with its next request, may be what frees room, so a long poll
	// should not hold that request for long.
	HoldsLocks bool
}

// AcquireRequest bounds an acquisition.
type AcquireRequest struct {
	// MaxRecords bounds the records acquired (the batch reaching it is
	// acquired whole unless Strict); at least 1.
	MaxRecords int
	// Strict acquires at most MaxRecords even within a batch
	// (ShareAcquireMode 1, record-limit, KIP-1206).
	Strict bool
	// MaxBytes bounds the batch bytes read; the first batch is read even
	// when larger (KIP-74).
	MaxBytes int
	// Buffer, if set, lends the read memory (partition.ReadRequest.Buffer).
	Buffer func(size int) []byte
}

// AckBatch is one acknowledgement of offsets First..Last: one type for
// all of them or one per offset.
type AckBatch struct {
	First, Last int64
	Types       []AckType
}

// Manager holds the share-partitions of the data partitions this node
// leads, for every share group, and the share sessions. Safe for
// concurrent use.
type Manager struct {
	cfg         Config
	node        int32
	persister   sharestate.Persister
	groups      GroupConfigs
	deadLetters DeadLetterWriter
	now         func() time.Time
	logger      *zap.Logger
	sessions    *Sessions

	// ctx ends at Close: lock-expiry writes stop.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts running lock-expiry callbacks and the eviction loop;
	// Close waits for them.
	wg sync.WaitGroup

	// mu guards the fields below. Lock order: sharePartition.mu, then
	// Manager.mu (never the other way round).
	mu         sync.Mutex
	closed     bool
	partitions map[sharestate.Key]*sharePartition
	// changed holds, per share group some ShareFetch waits for, a
	// channel closed (and forgotten) when records of the group become
	// available again (release, lock expiry): long-polling ShareFetches
	// wake. A group nobody waits for has no entry.
	changed map[string]chan struct{}
	// backoffs holds, per share-partition whose last dead-letter write
	// failed, the records to hold on its next load
	// (deadletter_backoff.go).
	backoffs map[sharestate.Key]*deadLetterBackoff
}

// Options are a Manager's collaborators and test seams.
type Options struct {
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger
	// DeadLetters writes dead letters; nil archives without writing
	// them (a group's dead-letter topic is then ignored, and logged).
	DeadLetters DeadLetterWriter
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// NewManager returns a Manager for node, persisting through persister and
// resolving group configs through groups. cfg must have passed Validate.
func NewManager(cfg Config, node int32, persister sharestate.Persister, groups GroupConfigs, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg:         cfg,
		node:        node,
		persister:   persister,
		groups:      groups,
		deadLetters: opts.DeadLetters,
		now:         opts.Now,
		logger:      opts.Logger.Named("share"),
		sessions:    NewSessions(cfg.MaxSessions),
		ctx:         ctx,
		cancel:      cancel,
		partitions:  make(map[sharestate.Key]*sharePartition),
		changed:     make(map[string]chan struct{}),
		backoffs:    make(map[sharestate.Key]*deadLetterBackoff),
	}
	m.wg.Add(1)
	go m.evictLoop()
	return m
}

// Sessions returns the share sessions of this node.
func (m *Manager) Sessions() *Sessions { return m.sessions }

// Close stops the lock-expiry timers and the eviction of idle
// share-partitions and waits for running ones. The
// share-partitions are dropped: their acquired records come back
// available when the next leader reads the stored state.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	parts := m.partitions
	m.partitions = make(map[sharestate.Key]*sharePartition)
	m.mu.Unlock()
	m.cancel()
	for _, sp := range parts {
		sp.mu.Lock()
		sp.dropLocked()
		sp.mu.Unlock()
	}
	m.wg.Wait()
}

// Changed returns a channel closed when records of group's
// share-partitions become available again; take it before acquiring, so a
// release in between is not missed.
func (m *Manager) Changed(group string) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.changed[group]
	if ch == nil {
		ch = make(chan struct{})
		m.changed[group] = ch
	}
	return ch
}

// notify wakes the waiters of Changed(group).
func (m *Manager) notify(group string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch := m.changed[group]; ch != nil {
		close(ch)
		delete(m.changed, group)
	}
}

// LockDuration returns group's record lock duration
// (share.record.lock.duration.ms).
func (m *Manager) LockDuration(group string) time.Duration {
	return m.groups.ShareGroupConfig(group).RecordLockDuration
}

// sharePartition is one share group's view of one data partition.
type sharePartition struct {
	key sharestate.Key

	// mu guards the fields below; it is held across dead-letter writes
	// and released while a state write is in flight (one at a time, so
	// a share-partition's durable changes are written in order).
	mu      sync.Mutex
	topic   string
	data    DataPartition
	loaded  bool
	dropped bool
	// stateEpoch and leaderEpoch are those of the loaded state.
	stateEpoch  int32
	leaderEpoch int32
	state       partitionState
	timer       *time.Timer
	// checked is when the stored state epoch was last seen to be the
	// loaded one (load, or a summary read by Acquire).
	checked time.Time
	// used is when a request last took sp (acquirePartition): an idle
	// share-partition is evicted (evict.go).
	used time.Time
	// Group commit (persistLocked): unwritten are the offsets changed
	// since the last write began; changed counts changes, written the
	// changes stored; writing is closed when the write in flight ends
	// (nil: none); writeErr is why sp was dropped by a failed write.
	unwritten []int64
	changed   uint64
	written   uint64
	writing   chan struct{}
	writeErr  error
}

// revalidateInterval is how long a share-partition holding no acquired
// records trusts its loaded state before Acquire reads the stored state
// epoch again: an admin reset or delete of an idle group's offsets
// (which writes nothing this node would be fenced on) is noticed within
// it.
const revalidateInterval = 5 * time.Second

// dropLocked marks sp dropped and stops its timer.
func (sp *sharePartition) dropLocked() {
	sp.dropped = true
	if sp.timer != nil {
		sp.timer.Stop()
		sp.timer = nil
	}
}

// limits resolves the limits of group's config.
func (m *Manager) limits(cfg configs.ShareGroup) limits {
	lim := limits{
		lock:          cfg.RecordLockDuration,
		deliveryLimit: int16(min(max(cfg.DeliveryCountLimit, 1), 1<<15-1)),
		maxLocks:      m.cfg.MaxRecordLocks,
		deadLetters:   cfg.DeadLetterTopic != "" && m.deadLetters != nil,
	}
	if lim.lock <= 0 {
		lim.lock = configs.DefaultShareGroup().RecordLockDuration
	}
	return lim
}

// acquirePartition returns group's share-partition of t, locked and
// loaded in t's current leader epoch. NOT_LEADER_OR_FOLLOWER when this
// node does not lead t.
func (m *Manager) acquirePartition(ctx context.Context, group string, t Target) (*sharePartition, error) {
	key := sharestate.Key{Group: group, TopicID: t.TopicID, Partition: t.Partition}
	for {
		node, epoch := t.Data.Leader()
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, kerr.NotLeaderForPartition
		}
		sp := m.partitions[key]
		if node != m.node {
			if sp != nil {
				delete(m.partitions, key)
			}
			m.mu.Unlock()
			if sp != nil {
				sp.mu.Lock()
				sp.dropLocked()
				sp.mu.Unlock()
			}
			return nil, kerr.NotLeaderForPartition
		}
		if sp == nil {
			sp = &sharePartition{key: key}
			m.partitions[key] = sp
		}
		m.mu.Unlock()
		sp.mu.Lock()
		if sp.dropped {
			sp.mu.Unlock()
			continue
		}
		sp.topic, sp.data = t.Topic, t.Data
		sp.used = m.now()
		if !sp.loaded || sp.leaderEpoch != epoch {
			if err := m.load(ctx, group, sp, epoch); err != nil {
				m.dropLocked(sp)
				sp.mu.Unlock()
				return nil, err
			}
		}
		return sp, nil
	}
}

// dropLocked forgets sp (held locked): the next use reads the stored
// state again.
func (m *Manager) dropLocked(sp *sharePartition) {
	sp.dropLocked()
	m.mu.Lock()
	if m.partitions[sp.key] == sp {
		delete(m.partitions, sp.key)
	}
	m.mu.Unlock()
}

// load reads sp's stored state as leader in epoch, initializing it at the
// group's share.auto.offset.reset when it was never initialized.
func (m *Manager) load(ctx context.Context, group string, sp *sharePartition, epoch int32) error {
	st, err := m.persister.Read(ctx, sp.key, epoch)
	if err != nil {
		return fmt.Errorf("read share-partition state of group %q partition %d: %w", group, sp.key.Partition, persistError(err))
	}
	if st.StateEpoch < 0 {
		start, err := m.resetOffset(sp.data, m.groups.ShareGroupConfig(group))
		if err != nil {
			return err
		}
		if err := m.persister.Initialize(ctx, sp.key, 0, start); err != nil && !errors.Is(err, kerr.FencedStateEpoch) {
			return fmt.Errorf("initialize share-partition state of group %q partition %d: %w", group, sp.key.Partition, persistError(err))
		}
		if st, err = m.persister.Read(ctx, sp.key, epoch); err != nil {
			return fmt.Errorf("read share-partition state of group %q partition %d: %w", group, sp.key.Partition, persistError(err))
		}
		if st.StateEpoch < 0 {
			return kerr.CoordinatorLoadInProgress
		}
	}
	sp.state.load(st)
	sp.stateEpoch, sp.leaderEpoch, sp.loaded = st.StateEpoch, epoch, true
	sp.checked = m.now()
	sp.state.moveStart(sp.data.Offsets().LogStart)
	m.holdBackedOffLocked(sp)
	m.scheduleLocked(sp)
	m.logger.Debug("share-partition loaded", zap.String("group", group), zap.String("topic", sp.topic),
		zap.Int32("partition", sp.key.Partition), zap.Int64("start-offset", sp.state.start), zap.Int32("state-epoch", sp.stateEpoch))
	return nil
}

// revalidateLocked reloads sp (held locked) when it holds no acquired
// records, has not checked the stored state epoch for
// revalidateInterval, and the stored one changed (an admin reset or
// deleted the group's offsets). A failed check keeps the loaded state:
// the next write is fenced anyway if it is stale.
func (m *Manager) revalidateLocked(ctx context.Context, group string, sp *sharePartition) error {
	now := m.now()
	if sp.state.acquired > 0 || now.Sub(sp.checked) < revalidateInterval {
		return nil
	}
	sum, err := m.persister.ReadSummary(ctx, sp.key)
	if err != nil {
		m.logger.Debug("share-partition state epoch check failed", zap.String("group", group), zap.String("topic", sp.topic),
			zap.Int32("partition", sp.key.Partition), zap.Error(err))
		return nil
	}
	sp.checked = now
	if sum.StateEpoch == sp.stateEpoch {
		return nil
	}
	m.logger.Info("share-partition state reset elsewhere; reloading", zap.String("group", group),
		zap.String("topic", sp.topic), zap.Int32("partition", sp.key.Partition), zap.Int32("state-epoch", sum.StateEpoch))
	if err := m.load(ctx, group, sp, sp.leaderEpoch); err != nil {
		m.dropLocked(sp)
		return err
	}
	return nil
}

// resetOffset is where a new share-partition starts
// (share.auto.offset.reset): the log start, the high watermark, or the
// first offset at or after now minus the duration (the high watermark
// when none is).
func (m *Manager) resetOffset(data DataPartition, cfg configs.ShareGroup) (int64, error) {
	o := data.Offsets()
	switch {
	case cfg.AutoOffsetReset == "earliest":
		return o.LogStart, nil
	case cfg.ResetDuration > 0:
		offset, _, found, err := data.OffsetForTimestamp(m.now().Add(-cfg.ResetDuration).UnixMilli())
		if err != nil {
			return 0, err
		}
		if !found {
			return o.HighWatermark, nil
		}
		return offset, nil
	default:
		return o.HighWatermark, nil
	}
}

// persistError turns the persister's fencing into what the client of
// this node hears: fenced by a newer leader is NOT_LEADER_OR_FOLLOWER.
func persistError(err error) error {
	if errors.Is(err, kerr.FencedLeaderEpoch) {
		return fmt.Errorf("%w: %w", kerr.NotLeaderForPartition, err)
	}
	return err
}

// persistLocked dead-letters and persists ch for sp (held locked; it is
// released while the write is awaited, so other requests on sp go on).
// Writes are group-committed: one write per share-partition is in flight
// at a time, and the next one carries every change made meanwhile, so
// concurrent acknowledgements cost one round trip to the share
// coordinator together rather than one each. It returns once a write
// holding ch is stored. On a failed write sp is dropped, so the next use
// reloads the stored state, and every change not yet stored fails with
// the error: a FENCED_STATE_EPOCH (an admin reset the state) is
// INVALID_RECORD_STATE to the client. The caller must check sp.dropped
// before using sp further.
func (m *Manager) persistLocked(ctx context.Context, group string, sp *sharePartition, cfg configs.ShareGroup, ch changes) error {
	if len(ch.deadLetters) > 0 {
		err := m.writeDeadLetters(ctx, group, sp, cfg, ch.deadLetters)
		switch {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			// A dead-letter topic that does not exist will not appear
			// by retrying: archive without dead letters rather than
			// deliver the records again and again.
			m.logger.Warn("dead-letter topic does not exist; records archived without dead letters",
				zap.String("group", group), zap.String("dead-letter-topic", cfg.DeadLetterTopic), zap.Int("records", len(ch.deadLetters)), zap.Error(err))
		case err != nil:
			hold := m.backOffDeadLetters(sp.key, ch.deadLetters)
			m.logger.Debug("dead-letter write failed; records held before delivery", zap.String("group", group),
				zap.String("topic", sp.topic), zap.Int32("partition", sp.key.Partition), zap.Duration("hold", hold), zap.Error(err))
			m.dropLocked(sp)
			return err
		default:
			m.forgetDeadLetterBackoff(sp.key)
		}
	}
	if ch.released {
		defer m.notify(sp.key.Group)
	}
	if ch.empty() {
		return nil
	}
	sp.unwritten = append(sp.unwritten, ch.offsets...)
	sp.changed++
	mine := sp.changed
	for sp.written < mine {
		if sp.dropped {
			if sp.writeErr != nil {
				return sp.writeErr
			}
			return fmt.Errorf("share-partition of group %q partition %d dropped before its change was stored: %w", group, sp.key.Partition, kerr.NotLeaderForPartition)
		}
		if sp.writing != nil {
			done := sp.writing
			sp.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
			}
			sp.mu.Lock()
			if ctx.Err() != nil && sp.written < mine {
				return fmt.Errorf("write share-partition state of group %q partition %d: %w", group, sp.key.Partition, ctx.Err())
			}
			continue
		}
		m.writeLocked(ctx, group, sp)
	}
	return nil
}

// writeLocked writes sp's unwritten changes as one Write, with sp.mu
// released during the call, and records the outcome: written advances,
// or sp is dropped with writeErr set.
func (m *Manager) writeLocked(ctx context.Context, group string, sp *sharePartition) {
	w := sp.state.write(sp.stateEpoch, sp.leaderEpoch, sp.unwritten)
	upTo := sp.changed
	sp.unwritten = sp.unwritten[:0]
	done := make(chan struct{})
	sp.writing = done
	sp.mu.Unlock()
	err := m.persister.Write(ctx, sp.key, w)
	sp.mu.Lock()
	sp.writing = nil
	close(done)
	if err == nil {
		sp.written = upTo
		return
	}
	if errors.Is(err, kerr.FencedStateEpoch) {
		m.logger.Info("share-partition state reset elsewhere; reloading", zap.String("group", group),
			zap.String("topic", sp.topic), zap.Int32("partition", sp.key.Partition))
		sp.writeErr = fmt.Errorf("%w: %w", kerr.InvalidRecordState, err)
	} else {
		sp.writeErr = fmt.Errorf("write share-partition state of group %q partition %d: %w", group, sp.key.Partition, persistError(err))
	}
	m.dropLocked(sp)
}

// expireLocked releases sp's expired locks and persists the change.
func (m *Manager) expireLocked(ctx context.Context, group string, sp *sharePartition, cfg configs.ShareGroup) error {
	ch := sp.state.expire(m.now(), m.limits(cfg))
	return m.persistLocked(ctx, group, sp, cfg, ch)
}

// scheduleLocked arms sp's timer for its earliest lock deadline.
func (m *Manager) scheduleLocked(sp *sharePartition) {
	deadline, ok := sp.state.nextDeadline()
	if !ok {
		if sp.timer != nil {
			sp.timer.Stop()
		}
		return
	}
	d := max(deadline.Sub(m.now()), 0)
	if sp.timer == nil {
		sp.timer = time.AfterFunc(d, func() { m.onTimer(sp) })
		return
	}
	sp.timer.Reset(d)
}

// onTimer releases sp's expired locks when its earliest deadline passed.
func (m *Manager) onTimer(sp *sharePartition) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.PersistTimeout)
	defer cancel()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.dropped || !sp.loaded {
		return
	}
	if node, epoch := sp.data.Leader(); node != m.node || epoch != sp.leaderEpoch {
		m.dropLocked(sp)
		return
	}
	cfg := m.groups.ShareGroupConfig(sp.key.Group)
	if err := m.expireLocked(ctx, sp.key.Group, sp, cfg); err != nil {
		m.logger.Warn("release expired share locks failed", zap.String("group", sp.key.Group),
			zap.String("topic", sp.topic), zap.Int32("partition", sp.key.Partition), zap.Error(err))
		return
	}
	if !sp.dropped {
		m.scheduleLocked(sp)
	}
}
