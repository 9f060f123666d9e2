package meta

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// raftDBFile is the raft-boltdb file (log and stable store) under the
// metadata directory; snapshots go to its "snapshots" subdirectory.
const raftDBFile = "raft.db"

// storeLockTimeout bounds the wait for raft.db's file lock (a variable
// for tests).
var storeLockTimeout = 5 * time.Second

// clusterIDKey is the stable-store key remembering which cluster this
// data dir belongs to, readable at Open before any log is replayed.
var clusterIDKey = []byte("sluice-cluster-id")

var (
	// ErrClosed reports use of a closed Group.
	ErrClosed = errors.New("meta: group closed")
	// ErrWrongCluster reports a data dir that belongs to another cluster
	// than the configured one.
	ErrWrongCluster = errors.New("meta: data dir belongs to another cluster")
)

// Group is this node's member of the metadata Raft group: it owns the
// raft.Raft, its raft-boltdb store and snapshot store, the FSM, and one
// goroutine that initialises the cluster when this node is its first
// leader and remembers the cluster id on disk. Safe for concurrent use.
type Group struct {
	cfg    Config
	logger *zap.Logger
	fsm    *FSM
	raft   *raft.Raft
	store  *raftboltdb.BoltStore
	seed   *InitCluster

	// observations receives Raft's leader observations, read by run;
	// observer is their registration.
	observations chan raft.Observation
	observer     *raft.Observer
	// leaderMu guards leaderChanged, closed and replaced by run at each
	// leader observation.
	leaderMu      sync.Mutex
	leaderChanged chan struct{}
	// clusterID is the cluster id this data dir belongs to ("" until
	// known); written by Open and run.
	clusterID atomic.Pointer[string]
	// foreignWarned is set once a state of another cluster was reported;
	// used by run only (and by Close after run exited).
	foreignWarned bool

	cancel context.CancelFunc
	// wg tracks run; Close waits.
	wg sync.WaitGroup
	// shutDown is closed by Close once Raft is shut down: proposals still
	// waiting stop (await).
	shutDown chan struct{}

	// mu guards closed.
	mu     sync.RWMutex
	closed bool
}

// Open opens (creating if needed) the metadata group's storage under dir
// (<data.dir>/meta): dir/raft.db holds the Raft log and stable store,
// dir/snapshots the snapshots. It starts Raft on opts.Transport and, when
// cfg.InitialMembers is set, bootstraps the group with them (a no-op for a
// data dir that already has Raft state). The state is then that of the
// latest snapshot; the rest of the log is applied in the background
// (WaitVersion waits for a version). Errors: an invalid cfg,
// ErrWrongCluster, storage failures.
func Open(dir string, cfg Config, opts Options) (*Group, error) {
	if opts.Transport == nil {
		return nil, errors.New("meta: Options.Transport is required")
	}
	// Raft's Shutdown closes the transport once Raft runs; before that, a
	// failed Open closes it here.
	ok, raftStarted := false, false
	defer func() {
		if !ok && !raftStarted {
			closeTransport(opts.Transport)
		}
	}()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	logger := opts.Logger.Named("meta").With(zap.Int32("node", cfg.Self.ID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("meta: create %s: %w", dir, err)
	}
	// bbolt locks the file; another process holding it (the same data
	// dir served twice) makes Open fail after storeLockTimeout instead of
	// waiting forever.
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, raftDBFile), BoltOptions: &bbolt.Options{Timeout: storeLockTimeout}})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("meta: %s is locked by another process; is this data dir served twice? %w", filepath.Join(dir, raftDBFile), err)
	}
	if err != nil {
		return nil, fmt.Errorf("meta: open %s: %w", filepath.Join(dir, raftDBFile), err)
	}
	g := &Group{cfg: cfg, logger: logger, fsm: NewFSM(), store: store, seed: opts.Seed, shutDown: make(chan struct{})}
	// Raft never blocks on an observer (unlike Config.NotifyCh); a dropped
	// observation is harmless, as one pending is enough for run to read
	// the current leadership.
	g.observations = make(chan raft.Observation, 4)
	g.leaderChanged = make(chan struct{})
	defer func() {
		if !ok {
			store.Close()
		}
	}()
	stored, err := store.Get(clusterIDKey)
	if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return nil, fmt.Errorf("meta: read cluster id from %s: %w", dir, err)
	}
	id := string(stored)
	if id != "" && cfg.ClusterID != "" && id != cfg.ClusterID {
		return nil, fmt.Errorf("data dir %s belongs to cluster %s, the configuration says %s; point this node at its own data dir or fix cluster.id: %w", dir, id, cfg.ClusterID, ErrWrongCluster)
	}
	g.clusterID.Store(&id)

	hl := newRaftLogger(logger)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, cfg.SnapshotRetain, hl)
	if err != nil {
		return nil, fmt.Errorf("meta: open snapshot store in %s: %w", dir, err)
	}
	rc := cfg.raftConfig()
	rc.Logger = hl
	if ir, ok := opts.Transport.(idleAppendReuser); ok {
		ir.SetIdleAppendReuse(idleAppendReuseAge(cfg))
	}
	r, err := raft.NewRaft(rc, g.fsm, store, store, snaps, opts.Transport)
	if err != nil {
		return nil, fmt.Errorf("meta: start raft: %w", err)
	}
	g.raft = r
	raftStarted = true
	g.observer = raft.NewObserver(g.observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(g.observer)
	if len(cfg.InitialMembers) > 0 {
		var servers []raft.Server
		for _, m := range cfg.InitialMembers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: serverID(m.ID), Address: raft.ServerAddress(m.RaftAddress)})
		}
		err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
		switch {
		case errors.Is(err, raft.ErrCantBootstrap):
			logger.Debug("raft state found, not bootstrapping")
		case err != nil:
			r.Shutdown().Error()
			return nil, fmt.Errorf("meta: bootstrap with %d initial members: %w", len(servers), err)
		default:
			logger.Info("bootstrapped metadata group", zap.Int("members", len(servers)))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.run(ctx)
	}()
	ok = true
	return g, nil
}

// idleAppendReuser is the optional capability of the group's transport to
// answer an idle AppendEntries (one without entries, sent every
// CommitTimeout) from the follower's last real answer to an identical
// one (replication/transport's heartbeat_reuse.go).
type idleAppendReuser interface {
	SetIdleAppendReuse(maxAge time.Duration)
}

// idleAppendReuseAge is how long a real answer to an idle AppendEntries
// may stand in for identical ones: ten heartbeat timeouts. An identical
// request tells a follower nothing new (a new commit index still goes
// in the next one, as before); the heartbeats, all sent, reveal a later
// term as before.
func idleAppendReuseAge(c Config) time.Duration { return 10 * c.HeartbeatTimeout }

// closeTransport closes t if it can be closed.
func closeTransport(t raft.Transport) error {
	if c, ok := t.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// serverID is a node's id in the Raft configuration.
func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.FormatInt(int64(id), 10)) }

// State returns the latest applied state this node knows. Followers may
// lag the leader by a few entries. Safe for concurrent use, lock-free.
func (g *Group) State() *State { return g.fsm.State() }

// Changed returns a channel closed at the next state change; see
// FSM.Changed. The node's reaction to metadata (open, close, delete
// replicas) waits on it, loads State and compares with what it acted on.
func (g *Group) Changed() <-chan struct{} { return g.fsm.Changed() }

// WaitVersion returns the state once its Version is at least version, or
// ctx's error.
func (g *Group) WaitVersion(ctx context.Context, version uint64) (*State, error) {
	for {
		ch := g.fsm.Changed()
		if s := g.fsm.State(); s.Version >= version {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("meta: wait for metadata version %d (have %d): %w", version, g.fsm.State().Version, ctx.Err())
		}
	}
}

// ClusterID returns the id of the cluster this data dir belongs to, as
// remembered on disk or learnt from the state; "" for a node that has not
// joined any cluster yet. A joining node sends it in its JoinRequest.
func (g *Group) ClusterID() string { return *g.clusterID.Load() }

// NodeID returns this node's id.
func (g *Group) NodeID() int32 { return g.cfg.Self.ID }

// IsLeader reports whether this node is the metadata leader now.
func (g *Group) IsLeader() bool { return g.raft.State() == raft.Leader }

// Leader returns the metadata leader's node id and Raft address, or -1
// and "" while none is known.
func (g *Group) Leader() (int32, string) {
	addr, id := g.raft.LeaderWithID()
	if id == "" {
		return -1, ""
	}
	n, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil {
		return -1, string(addr)
	}
	return int32(n), string(addr)
}

// Close stops this node's member of the group: if it is the leader of a
// group with other voters it first hands leadership to one of them
// (bounded by Raft's election timeout), then shuts Raft down, waits for
// every goroutine the group started, and closes the store. Raft's
// Shutdown closes the transport. Calling Close again returns nil.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	if g.raft.State() == raft.Leader {
		if voters, err := g.Voters(); err == nil && len(voters) > 1 {
			if err := g.raft.LeadershipTransfer().Error(); err != nil {
				g.logger.Warn("leadership transfer before shutdown failed", zap.Error(err))
			} else {
				g.logger.Info("leadership transferred before shutdown")
			}
		}
	}
	err := g.raft.Shutdown().Error()
	close(g.shutDown)
	g.raft.DeregisterObserver(g.observer)
	g.cancel()
	g.wg.Wait()
	// The last entries applied before Shutdown may not have been seen by
	// run yet.
	g.rememberClusterID()
	if cerr := g.store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("meta: close: %w", err)
	}
	return nil
}

// run is the group's one goroutine: on becoming leader it initialises an
// uninitialised cluster and refreshes this node's registration; on every
// state change it remembers the cluster id on disk.
func (g *Group) run(ctx context.Context) {
	// Leadership won before the observer was registered (a single node
	// restarting elects itself at once) sent no observation.
	if g.raft.State() == raft.Leader {
		g.onLeader(ctx)
	}
	for {
		changed := g.fsm.Changed()
		g.rememberClusterID()
		select {
		case <-ctx.Done():
			return
		case <-g.observations:
			g.leaderMu.Lock()
			close(g.leaderChanged)
			g.leaderChanged = make(chan struct{})
			g.leaderMu.Unlock()
			if g.raft.State() == raft.Leader {
				g.onLeader(ctx)
			}
		case <-changed:
		}
	}
}

// LeaderChanged returns a channel closed at the next change of the leader
// this node knows of (Leader, IsLeader). A caller forwarding to the
// leader waits on it when no leader is known.
func (g *Group) LeaderChanged() <-chan struct{} {
	g.leaderMu.Lock()
	defer g.leaderMu.Unlock()
	return g.leaderChanged
}

// Barrier waits until every command committed before the call is applied
// on this node, so State holds them all. Only the leader can tell (else
// *NotLeaderError): a node opening its data dir calls it to know its
// state is complete before acting on what is absent from it.
func (g *Group) Barrier(ctx context.Context) error {
	if g.raft.State() != raft.Leader {
		return g.notLeader(false)
	}
	return g.await(ctx, g.raft.Barrier(g.timeout(ctx)))
}

// Snapshot takes a snapshot of the state now and compacts the log behind
// it (keeping Config.TrailingLogs entries). Raft also does it by itself
// every SnapshotInterval once SnapshotThreshold entries accumulated.
func (g *Group) Snapshot() error {
	return g.translate(g.raft.Snapshot().Error())
}

// rememberClusterID stores the state's cluster id in the stable store the
// first time it is seen.
func (g *Group) rememberClusterID() {
	id := g.fsm.State().ClusterID
	if id == "" || id == g.ClusterID() {
		return
	}
	if old := g.ClusterID(); old != "" {
		// Join refuses this; reaching it means the data dir was reused.
		// Said once, not at every change.
		if g.foreignWarned {
			return
		}
		g.foreignWarned = true
		g.logger.Error("metadata names another cluster than the data dir", zap.String("cluster-id", id), zap.String("data-dir-cluster-id", old))
		return
	}
	if err := g.store.Set(clusterIDKey, []byte(id)); err != nil {
		g.logger.Error("cannot remember the cluster id", zap.String("cluster-id", id), zap.Error(err))
		return
	}
	g.clusterID.Store(&id)
	g.logger.Info("joined cluster", zap.String("cluster-id", id))
}

// onLeader runs when this node becomes leader: after a barrier (so the
// state includes every committed command) it initialises the cluster if
// no InitCluster has been applied, or re-registers this node if its
// advertised address changed. Failures are logged; the next leader
// retries.
func (g *Group) onLeader(ctx context.Context) {
	if err := g.raft.Barrier(g.cfg.ProposeTimeout).Error(); err != nil {
		g.logger.Warn("barrier after election failed", zap.Error(err))
		return
	}
	s := g.fsm.State()
	var cmd Command
	switch self, registered := s.Node(g.cfg.Self.ID); {
	case !s.Initialized():
		cmd = g.initCommand()
	case registered && (self.Host != g.cfg.Self.Host || self.Port != g.cfg.Self.Port || self.Rack != g.cfg.Self.Rack):
		cmd = &RegisterNode{ClusterID: s.ClusterID, Node: g.cfg.Self.node()}
	default:
		return
	}
	pctx, cancel := context.WithTimeout(ctx, g.cfg.ProposeTimeout)
	defer cancel()
	if _, err := g.Propose(pctx, cmd); err != nil {
		g.logger.Warn("leader metadata proposal failed", zap.String("op", cmd.op()), zap.Error(err))
		return
	}
	if init, ok := cmd.(*InitCluster); ok {
		g.logger.Info("initialised cluster", zap.String("cluster-id", init.ClusterID), zap.Int("nodes", len(init.Nodes)), zap.Int("topics", len(init.Topics)))
	}
}

// initCommand builds the InitCluster this node proposes as the cluster's
// first leader.
func (g *Group) initCommand() *InitCluster {
	var c InitCluster
	if g.seed != nil {
		c = *g.seed
	}
	c.Nodes = append([]Node(nil), c.Nodes...)
	if c.ClusterID == "" {
		c.ClusterID = g.cfg.ClusterID
	}
	if c.ClusterID == "" {
		c.ClusterID = g.ClusterID()
	}
	if c.ClusterID == "" {
		c.ClusterID = NewClusterID()
	}
	have := map[int32]bool{}
	for _, n := range c.Nodes {
		have[n.ID] = true
	}
	members := g.cfg.InitialMembers
	if len(members) == 0 {
		members = []Member{g.cfg.Self}
	}
	for _, m := range members {
		if !have[m.ID] {
			c.Nodes = append(c.Nodes, m.node())
		}
	}
	return &c
}

// NewClusterID returns a new cluster id: 16 random bytes in unpadded
// URL-safe base64, 22 characters, as Kafka's.
func NewClusterID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
