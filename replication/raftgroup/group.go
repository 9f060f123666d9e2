package raftgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/raftlog"
)

// SnapshotDir is the directory, inside the partition's, of its Raft
// snapshots.
const SnapshotDir = "raft-snapshots"

// logCacheEntries is how many of the latest entries Raft keeps in memory
// for followers in sync. A batch may be 1 MiB and a node hosts many
// groups: a small cache bounds memory; older entries come from the
// segment log (page cache) through the store's cursor.
const logCacheEntries = 16

// ErrClosed reports use of a closed Group.
var ErrClosed = errors.New("raftgroup: closed")

// Group is one partition's Raft group on this node: the replica, its Raft
// log store (the segment log itself), and the raft.Raft that replicates
// it. The leader appends through it; every replica applies what commits.
// Safe for concurrent use.
type Group struct {
	cfg     Config
	id      raft.ServerID
	admit   func() error
	replica *partition.Replica
	store   *raftlog.Store
	fsm     *fsm
	raft    *raft.Raft
	logger  *zap.Logger

	// proposeMu keeps Prepare and the proposals of one Append together,
	// so entries reach Raft in the order Prepare forecast them.
	proposeMu sync.Mutex
	// ready is true while this node leads and has applied every entry of
	// earlier terms (a barrier in its term): only then can Prepare see
	// every batch the log holds, so no retry is proposed twice. term is
	// the leader epoch of that term.
	ready atomic.Bool
	term  atomic.Int32
	// projected is the offset the next proposal's first batch gets: the
	// log end when leadership became ready, plus every batch proposed
	// since, in the term projectedTerm. Guarded by proposeMu.
	projected     int64
	projectedTerm int32

	// changedMu guards changed, closed and replaced whenever ready moves.
	changedMu sync.Mutex
	changed   chan struct{}

	// syncMu guards unreachable: when each follower's heartbeat last
	// failed, as Raft's observations report them on the leader; and
	// readingLog: when each replica last read this node's log to catch
	// up (serveLog). See insync.go.
	syncMu      sync.Mutex
	unreachable map[raft.ServerID]time.Time
	readingLog  map[raft.ServerID]time.Time

	// snaps is the group's snapshot store; logTransport, when the
	// transport has the capability, serves and reads logs for catch-up.
	snaps        *snapshotStore
	logTransport LogTransport
	// serveHook, a test seam, is called before a peer's ReadLog is
	// answered.
	serveHook atomic.Pointer[func(from int64, maxBytes int)]
	// started is closed once raft is set: raft's goroutines (a restore)
	// may run before NewRaft returns.
	started chan struct{}

	// ledAtFailure is set when the replica led (accepted appends) as its
	// storage failed: its followers must then be told (failure.go).
	ledAtFailure atomic.Bool
	// failure is why this replica left the group (failure.go), nil while
	// it takes part; failed wakes the watch goroutine to step down.
	failure atomic.Pointer[error]
	failed  chan struct{}

	// snapshotting is true while a snapshot snapshotDue asked for runs;
	// lastSnapshot is when snapshotDue last asked, in UnixNano.
	snapshotting atomic.Bool
	lastSnapshot atomic.Int64

	// retries, when the transport has the capability, retries failed
	// AppendEntries; its waits are ended before raft shuts down.
	retries appendRetryWaiter

	// onLead is Options.OnLead.
	onLead func(epoch int32)

	// failover, when the transport has the capability, tells the group
	// of dead peers and starts elections (failover.go). downMu guards
	// downPeers (peers declared down, not yet looked at) and
	// bootstrapServers (set by a Bootstrap that bootstrapped); downSignal
	// wakes the watch goroutine to look. plan is the watch goroutine's.
	failover  FailoverTransport
	preVoter  raft.WithPreVote
	localAddr raft.ServerAddress
	downMu    sync.Mutex
	downPeers []raft.ServerAddress
	// leftLeaders are peers whose replica announced it left the group
	// (its storage failed), not yet looked at; leaver announces this
	// replica's own leaving (failover.go).
	leftLeaders      []raft.ServerAddress
	leaver           leaveAnnouncer
	bootstrapServers []raft.Server
	opened           bool
	peersUp          bool
	downSignal       chan struct{}
	plan             failoverState

	observations chan raft.Observation
	observer     *raft.Observer
	stop         chan struct{}
	done         sync.WaitGroup
	closeOnce    sync.Once
	closeErr     error
}

// Open starts the Raft group of replica, whose directory is dir. The
// replica must have been opened with Options.ExternalHighWatermark: the
// group moves its high watermark to the commit index. Open drops a
// snapshot whose restore a crash interrupted (raft-restore.pending), reads
// where replay starts (the latest snapshot, else the first entry of the
// Raft window) and makes everything below it visible at once. When the
// transport is a LogTransport, the group serves its committed batches to
// peers catching up and catches up from the leader's segments itself. The group owns
// opts.Transport; the caller still owns (and closes, after Close) the
// replica.
func Open(dir string, replica *partition.Replica, cfg Config, opts Options) (*Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Transport == nil {
		return nil, errNoTransport
	}
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	g := &Group{
		cfg:          cfg,
		id:           opts.ID,
		admit:        opts.Admit,
		replica:      replica,
		logger:       logger.Named("raftgroup"),
		observations: make(chan raft.Observation, 16),
		changed:      make(chan struct{}),
		failed:       make(chan struct{}, 1),
		stop:         make(chan struct{}),
		started:      make(chan struct{}),
		downSignal:   make(chan struct{}, 1),
		onLead:       opts.OnLead,
	}
	closeTransport := func() {
		if c, ok := opts.Transport.(raft.WithClose); ok {
			_ = c.Close()
		}
	}
	store, err := raftlog.Open(dir, replica.SegmentLog(), raftlog.Options{FS: opts.FS, OnTruncate: g.truncated, OnSync: opts.SyncObserver, OnFailure: g.fail})
	if err != nil {
		closeTransport()
		return nil, err
	}
	g.store = store
	fail := func(err error) (*Group, error) {
		_ = store.Close()
		closeTransport()
		return nil, err
	}
	cache, err := raft.NewLogCache(logCacheEntries, store)
	if err != nil {
		return fail(err)
	}
	stable, err := raftlog.OpenStable(dir, opts.FS)
	if err != nil {
		return fail(err)
	}
	files, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, SnapshotDir), 2, hclog.NewNullLogger())
	if err != nil {
		return fail(fmt.Errorf("raftgroup: snapshot store in %s: %w", dir, err))
	}
	snaps := &snapshotStore{SnapshotStore: files, partitionDir: dir, snapshotDir: filepath.Join(dir, SnapshotDir)}
	g.snaps = snaps
	dropped, err := snaps.recoverPending()
	if err != nil {
		return fail(err)
	}
	if dropped != "" {
		g.logger.Warn("dropped a snapshot whose restore did not complete; the leader sends it again", zap.String("snapshot", dropped))
	}
	next, err := replayStart(snaps, store)
	if err != nil {
		return fail(err)
	}
	replica.AdvanceHighWatermark(next)
	g.fsm = &fsm{replica: replica, next: next, onFailure: g.applyFailed, restore: g.catchUp,
		snapshotThreshold: cfg.SnapshotThreshold, snapshotDue: g.snapshotDue}
	// The transport may wrap the Mux's (replication's reassignment
	// progress tracker does): look through wrappers that Unwrap.
	for t := opts.Transport; t != nil; {
		if ft, ok := t.(FailoverTransport); ok && g.failover == nil {
			g.failover = ft
			if hr, ok := t.(heartbeatReuser); ok {
				hr.SetHeartbeatReuse(heartbeatReuseWindow(cfg))
			}
			if hb, ok := t.(heartbeatBatcher); ok {
				hb.SetHeartbeatBatchWindow(heartbeatBatchWindow(cfg))
			}
			if ir, ok := t.(idleAppendReuser); ok {
				ir.SetIdleAppendReuse(idleAppendReuseAge(cfg))
			}
			if ar, ok := t.(appendRetryWaiter); ok {
				ar.SetAppendRetryWait(appendRetryWait(cfg))
				g.retries = ar
			}
			if la, ok := t.(leaveAnnouncer); ok {
				g.leaver = la
				la.SetLeaderLeftHandler(g.leaderLeft)
			}
		}
		if lt, ok := t.(LogTransport); ok {
			g.logTransport = lt
			break
		}
		u, ok := t.(interface{ Unwrap() raft.Transport })
		if !ok {
			break
		}
		t = u.Unwrap()
	}

	rc := cfg.raftConfig(opts.ID)
	rc.Logger = hclog.NewNullLogger()
	r, err := raft.NewRaft(rc, g.fsm, cache, stable, snaps, opts.Transport)
	if err != nil {
		return fail(fmt.Errorf("raftgroup: start raft in %s: %w", dir, err))
	}
	g.raft = r
	close(g.started)
	if g.logTransport != nil {
		// Only now: serving a peer needs raft (its configuration).
		g.logTransport.SetLogReader(g.serveLog)
		g.logTransport.SetRestoredHandler(g.peerRestored)
	}
	g.observer = raft.NewObserver(g.observations, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.PeerObservation:
			return true
		case raft.LeaderObservation:
			return g.failover != nil
		}
		return false
	})
	r.RegisterObserver(g.observer)
	if g.failover != nil {
		g.preVoter, _ = opts.Transport.(raft.WithPreVote)
		g.localAddr = opts.Transport.LocalAddr()
		g.failover.SetPeerDownHandler(g.peerDown)
		g.failover.SetPeerUpHandler(g.peerUp)
		if leader, _ := r.LeaderWithID(); leader != "" {
			g.failover.WatchPeer(leader)
		}
		// An existing group with no leader after a while elects
		// (failover.go); a new one is planned by Bootstrap instead.
		if r.LastIndex() > 0 {
			g.downMu.Lock()
			g.opened = true
			g.downMu.Unlock()
			g.wakeFailover()
		}
	}
	g.done.Add(1)
	go g.watch()
	return g, nil
}

// replayStart returns the offset of the first batch Raft will replay on
// start: the latest snapshot's, else that of the first entry the store
// holds (the log end when it holds none). A store that holds no entry
// makes the whole log visible: every batch in it is committed (a restore
// truncates what may not be before it resets the store, and appends only
// committed batches after).
func replayStart(snaps raft.SnapshotStore, store *raftlog.Store) (int64, error) {
	metas, err := snaps.List()
	if err != nil {
		return 0, fmt.Errorf("raftgroup: list snapshots: %w", err)
	}
	if len(metas) == 0 {
		first, err := store.FirstIndex()
		if err != nil {
			return 0, err
		}
		if first > 1 {
			return 0, fmt.Errorf("raftgroup: the Raft log starts at entry %d and no snapshot covers the entries before it", first)
		}
		return store.FirstOffset(), nil
	}
	_, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		return 0, fmt.Errorf("raftgroup: open snapshot %s: %w", metas[0].ID, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, snapshotSize+1))
	if err != nil {
		return 0, fmt.Errorf("raftgroup: read snapshot %s: %w", metas[0].ID, err)
	}
	s, err := decodeSnapshot(b)
	if err != nil {
		return 0, err
	}
	if last, err := store.LastIndex(); err == nil && last == 0 {
		return max(s.next, store.FirstOffset()), nil
	}
	return s.next, nil
}

// Bootstrap makes servers the group's first configuration. Every replica
// is bootstrapped with the same list; on a group that already has state it
// does nothing.
//
// With a FailoverTransport, the first of servers starts the first
// election at once, the next ones FailoverStagger apart if there is still
// no leader (failover.go): without, Raft elects after HeartbeatTimeout.
func (g *Group) Bootstrap(servers []raft.Server) error {
	err := g.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return nil
	}
	if err == nil && g.failover != nil {
		g.downMu.Lock()
		g.bootstrapServers = slices.Clone(servers)
		g.downMu.Unlock()
		g.wakeFailover()
	}
	return err
}

// watch follows this node's Raft state: on winning leadership it waits
// for a barrier (every entry of earlier terms applied) before accepting
// appends; on losing it, it stops accepting and drops Prepare's forecast.
func (g *Group) watch() {
	defer g.done.Done()
	defer g.stopElectionTimer()
	for {
		select {
		case <-g.stop:
			return
		case <-g.failed:
			g.stepDown()
			continue
		case <-g.downSignal:
			g.takeFailoverEvents()
			continue
		case <-g.electionDue():
			g.plan.timer = nil
			g.electionDueNow()
			continue
		case o := <-g.observations:
			switch d := o.Data.(type) {
			case raft.LeaderObservation:
				if d.LeaderAddr != "" {
					g.failover.WatchPeer(d.LeaderAddr)
				}
				continue
			case raft.FailedHeartbeatObservation:
				g.noteHeartbeatFailed(d.PeerID)
				continue
			case raft.ResumedHeartbeatObservation:
				g.forgetHeartbeatFailed(d.PeerID)
				continue
			case raft.PeerObservation:
				// Its replication (and heartbeat) goroutine started or
				// stopped: a failure the old one saw is not the new one's.
				g.forgetHeartbeatFailed(d.Peer.ID)
				continue
			}
			state, _ := o.Data.(raft.RaftState)
			g.forgetHeartbeatFailures()
			if state != raft.Leader || g.Failed() != nil {
				if g.ready.Swap(false) {
					g.signal()
				}
				g.replica.ResetPending()
				continue
			}
			term := g.raft.CurrentTerm()
			if err := g.futureError(g.raft.Barrier(g.cfg.ApplyTimeout)); err != nil {
				g.logger.Debug("barrier after election failed", zap.Error(err))
				continue
			}
			if g.raft.State() != raft.Leader || g.raft.CurrentTerm() != term {
				continue
			}
			g.proposeMu.Lock()
			g.projected = g.replica.Offsets().LogEnd
			g.projectedTerm = int32(term)
			g.term.Store(int32(term))
			g.replica.SetLeaderEpoch(int32(term))
			g.ready.Store(true)
			g.proposeMu.Unlock()
			g.signal()
			g.logger.Debug("leading", zap.Uint64("term", term))
			if g.onLead != nil {
				g.onLead(int32(term))
			}
		}
	}
}

// futureError waits for f's result, or until the group stops: Raft may
// leave a future unresolved at Shutdown (hashicorp/raft v1.7.2: one still
// queued to its leader loop or its FSM), and Close waits for watch. The
// goroutine left waiting on such a future is never ended.
func (g *Group) futureError(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-g.stop:
		return raft.ErrRaftShutdown
	}
}

// endAppendRetries ends the transport's AppendEntries retries, which
// raft's Shutdown would otherwise wait for.
func (g *Group) endAppendRetries() {
	if g.retries != nil {
		g.retries.EndAppendRetries()
	}
}

// Changed returns a channel closed the next time IsLeader changes.
func (g *Group) Changed() <-chan struct{} {
	g.changedMu.Lock()
	defer g.changedMu.Unlock()
	return g.changed
}

// signal closes the current Changed channel and makes a new one.
func (g *Group) signal() {
	g.changedMu.Lock()
	defer g.changedMu.Unlock()
	close(g.changed)
	g.changed = make(chan struct{})
}

// Term returns the group's current Raft term as this node knows it.
func (g *Group) Term() int32 { return int32(g.raft.CurrentTerm()) }

// IsLeader reports whether this node leads the group and accepts appends
// (never once its storage failed).
func (g *Group) IsLeader() bool { return g.ready.Load() && g.failure.Load() == nil }

// LeaderEpoch returns the leader epoch (Raft term) appends are stamped
// with while IsLeader.
func (g *Group) LeaderEpoch() int32 { return g.term.Load() }

// Leader returns the current leader's server id and address, empty when
// none is known. A replica whose storage failed never names itself, even
// while its Raft is still being shut down.
func (g *Group) Leader() (raft.ServerID, raft.ServerAddress) {
	addr, id := g.raft.LeaderWithID()
	if id == g.id && g.Failed() != nil {
		return "", ""
	}
	return id, addr
}

// FirstOffset returns the offset of the first batch the group's Raft
// window holds (the log end when it holds none): a follower catching up
// may still read every batch from there.
func (g *Group) FirstOffset() int64 { return g.store.FirstOffset() }

// Raft returns the group's raft.Raft, for membership changes and stats.
func (g *Group) Raft() *raft.Raft { return g.raft }

// Append proposes the produced batches and waits for them: Propose,
// then Wait.
func (g *Group) Append(ctx context.Context, b []byte) (partition.AppendResult, error) {
	p, err := g.Propose(b)
	if err != nil {
		return partition.AppendResult{}, err
	}
	return p.Wait(ctx)
}

// Proposal is a produce handed to Raft: its place in the log is fixed
// (Result holds the offsets it gets if it commits) but it is not yet
// committed.
type Proposal struct {
	// Result is where the leader placed the batches: the offsets they
	// get if they commit, or, for a retry of batches already applied,
	// the original's (then there is nothing to wait for).
	Result  partition.AppendResult
	futures []raft.ApplyFuture
	group   *Group
}

// Propose validates the produced batches (one or more, concatenated) and
// checks their producer sequences (Prepare), then hands them to Raft, one
// entry per batch, and returns at once. Proposals are placed in the order
// of the Propose calls. The offsets in the Proposal's Result are final if
// it commits: after the barrier of its term the leader's log holds only
// applied entries, and every later entry lands at the end in proposal
// order. Errors are *kerr.Error values a client understands:
// NotLeaderForPartition on a node that does not lead (the client
// refreshes its metadata and retries; an idempotent producer's retry is
// recognised), KafkaStorageError on a replica whose storage failed
// (Failed) or while Options.Admit refuses (the disk is nearly full), and
// Prepare's rejections. b is not retained.
func (g *Group) Propose(b []byte) (*Proposal, error) {
	return g.propose(func(term int32) (partition.Entry, partition.AppendResult, error) {
		return g.replica.Prepare(b, term)
	})
}

// ProposeVerified is Propose for the batches of a transactional produce
// verified with guard (partition.Replica.PrepareVerified): a batch that
// would begin its producer's transaction needs guard still in force
// (InvalidTxnState otherwise).
func (g *Group) ProposeVerified(b []byte, guard uint64) (*Proposal, error) {
	return g.propose(func(term int32) (partition.Entry, partition.AppendResult, error) {
		return g.replica.PrepareVerified(b, term, guard)
	})
}

// StartTxnVerification starts the verification of a transactional
// produce on the leader, in its current term
// (partition.Replica.StartTxnVerification): the guard to pass to
// ProposeVerified, 0 when none is needed. NotLeaderForPartition on a
// node that does not lead.
func (g *Group) StartTxnVerification(producerID int64, epoch int16, bumpsEpoch bool) (uint64, error) {
	if !g.ready.Load() {
		return 0, kerr.NotLeaderForPartition
	}
	g.proposeMu.Lock()
	defer g.proposeMu.Unlock()
	if !g.ready.Load() || g.projectedTerm != g.term.Load() {
		return 0, kerr.NotLeaderForPartition
	}
	return g.replica.StartTxnVerification(producerID, epoch, bumpsEpoch, g.term.Load())
}

// ProposeAsCoordinator is Propose for batches a coordinator writes to its
// internal topic (partition.Replica.PrepareAsCoordinator): a batch of a
// producer without sequences joins the producer's transaction.
func (g *Group) ProposeAsCoordinator(b []byte) (*Proposal, error) {
	return g.propose(func(term int32) (partition.Entry, partition.AppendResult, error) {
		return g.replica.PrepareAsCoordinator(b, term)
	})
}

// ProposeVerifiedAsCoordinator is ProposeAsCoordinator for a
// coordinator's batch verified with guard
// (partition.Replica.PrepareVerifiedAsCoordinator, as TxnOffsetCommit's
// records): a batch that would begin its producer's transaction needs
// guard still in force (InvalidTxnState otherwise).
func (g *Group) ProposeVerifiedAsCoordinator(b []byte, guard uint64) (*Proposal, error) {
	return g.propose(func(term int32) (partition.Entry, partition.AppendResult, error) {
		return g.replica.PrepareVerifiedAsCoordinator(b, term, guard)
	})
}

// ProposeMarker is Propose for transaction marker m, which the leader
// builds (partition.Replica.PrepareMarker), with Propose's errors and the
// marker's refusals (InvalidProducerEpoch, TransactionCoordinatorFenced).
func (g *Group) ProposeMarker(m partition.TxnMarker) (*Proposal, error) {
	return g.propose(func(term int32) (partition.Entry, partition.AppendResult, error) {
		e, err := g.replica.PrepareMarker(m, term)
		return e, partition.AppendResult{}, err
	})
}

// propose is Propose with the leader step prepare, called under proposeMu
// with the group's term.
func (g *Group) propose(prepare func(term int32) (partition.Entry, partition.AppendResult, error)) (*Proposal, error) {
	if err := g.Failed(); err != nil {
		return nil, failedError(err)
	}
	if !g.ready.Load() {
		return nil, kerr.NotLeaderForPartition
	}
	if g.admit != nil {
		if err := g.admit(); err != nil {
			return nil, err
		}
	}
	g.proposeMu.Lock()
	defer g.proposeMu.Unlock()
	if !g.ready.Load() || g.projectedTerm != g.term.Load() {
		return nil, kerr.NotLeaderForPartition
	}
	entry, dup, err := prepare(g.term.Load())
	if err != nil {
		return nil, err
	}
	if entry.Batches == nil {
		return &Proposal{Result: dup, group: g}, nil
	}
	p := &Proposal{group: g, Result: partition.AppendResult{
		BaseOffset:     g.projected,
		LogAppendTime:  entry.LogAppendTime,
		LogStartOffset: g.replica.Offsets().LogStart,
	}}
	for pos := 0; pos < len(entry.Batches); {
		h, _ := log.ParseBatchHeader(entry.Batches[pos:]) // Prepare validated
		// A copy: Raft keeps the bytes (its cache) after the proposal
		// ends, and b belongs to the caller.
		data := bytes.Clone(entry.Batches[pos : pos+h.Size()])
		if entry.LogAppendTime >= 0 {
			log.SetLogAppendTime(data, entry.LogAppendTime)
		}
		p.futures = append(p.futures, g.raft.Apply(data, g.cfg.ApplyTimeout))
		g.projected += int64(h.LastOffsetDelta) + 1
		pos += h.Size()
	}
	p.Result.LastOffset = g.projected - 1
	return p, nil
}

// Wait returns once every batch of the proposal is committed by a
// majority and applied here, with the result (the offsets Result
// announced), or when ctx ends (the proposal may still commit). A failed
// proposal answers NotLeaderForPartition (leadership lost: the entries may
// or may not commit; the client retries and an idempotent retry is
// recognised), KafkaStorageError (this replica's storage failed meanwhile;
// the same holds), RequestTimedOut (Raft's queue was full), or the apply
// step's deterministic rejection.
func (p *Proposal) Wait(ctx context.Context) (partition.AppendResult, error) {
	if len(p.futures) == 0 {
		return p.Result, nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, f := range p.futures {
			_ = f.Error()
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return partition.AppendResult{}, ctx.Err()
	}
	out := p.Result
	for i, f := range p.futures {
		if err := f.Error(); err != nil {
			p.group.replica.ResetPending()
			if ferr := p.group.Failed(); ferr != nil {
				// This leader could not store the entry: raft stepped
				// down before replicating it (raft's log cache hides
				// the store's error from the future's).
				return partition.AppendResult{}, failedError(ferr)
			}
			return partition.AppendResult{}, proposalError(err)
		}
		r, _ := f.Response().(result)
		if r.err != nil {
			return partition.AppendResult{}, r.err
		}
		if i == 0 && r.res.BaseOffset != out.BaseOffset {
			// The projection is an invariant; say so loudly if it broke.
			p.group.logger.Error("proposal applied at another offset than projected",
				zap.Int64("projected", out.BaseOffset), zap.Int64("applied", r.res.BaseOffset))
			out.BaseOffset = r.res.BaseOffset
		}
		out.LastOffset = r.res.LastOffset
		out.LogStartOffset = r.res.LogStartOffset
	}
	return out, nil
}

// proposalError turns a failed proposal into what the client is told.
func proposalError(err error) error {
	switch {
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return kerr.RequestTimedOut
	default:
		// Not leader, leadership lost, shut down: the entry may or may
		// not commit; the client retries against the leader it finds.
		return kerr.NotLeaderForPartition
	}
}

// truncated is the store's OnTruncate: the replica rebuilds what it
// derived from the removed batches.
func (g *Group) truncated(offset int64) {
	if err := g.replica.Truncated(); err != nil {
		g.logger.Error("rebuild replica state after truncation", zap.Int64("offset", offset), zap.Error(err))
	}
}

// applyFailed stops the group after the replica could not apply an
// entry: this node stops leading and voting; the others go on (fail).
func (g *Group) applyFailed(err error) { g.fail(err) }

// Close hands leadership to another replica if this node leads, shuts
// Raft down (which closes the transport) and waits for the group's
// goroutines. The replica stays open: it is the caller's to close.
func (g *Group) Close() error {
	g.closeOnce.Do(func() {
		g.ready.Store(false)
		if g.raft.State() == raft.Leader {
			if err := g.raft.LeadershipTransfer().Error(); err != nil {
				g.logger.Debug("leadership transfer on close", zap.Error(err))
			}
		}
		g.raft.DeregisterObserver(g.observer)
		g.endAppendRetries()
		err := g.raft.Shutdown().Error()
		close(g.stop)
		g.done.Wait()
		g.closeErr = errors.Join(err, g.store.Close())
	})
	return g.closeErr
}
