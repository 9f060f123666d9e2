package meta

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// raftDBFile is the raft-boltdb file (log and stable store) under the
// metadata directory; snapshots go to its "snapshots" subdirectory.
const raftDBFile = "raft.db"

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

// NotLeaderError is returned by a Group operation that only the metadata
// leader can perform, on a node that is not the leader. It unwraps to
// kerr.NotController, so a Kafka handler answers NOT_CONTROLLER and an
// internal caller forwards to LeaderID.
type NotLeaderError struct {
	// LeaderID is the leader's node id, or -1 when no leader is known
	// (an election is under way).
	LeaderID int32
	// LeaderAddress is the leader's Raft address, "" when unknown.
	LeaderAddress string
	// Uncertain is set when the proposal was appended but leadership was
	// lost before it committed: it may yet take effect. Retrying a command
	// must then tolerate "already done" (TopicAlreadyExists, ...).
	Uncertain bool
}

// Error says that this node is not the leader and names the leader.
func (e *NotLeaderError) Error() string {
	what := "not the metadata leader"
	if e.Uncertain {
		what = "lost metadata leadership before the proposal committed; it may still take effect"
	}
	if e.LeaderID < 0 {
		return "meta: " + what + "; no leader known"
	}
	return fmt.Sprintf("meta: %s; the leader is node %d at %s", what, e.LeaderID, e.LeaderAddress)
}

// Unwrap returns kerr.NotController.
func (e *NotLeaderError) Unwrap() error { return kerr.NotController }

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

	cancel context.CancelFunc
	// wg tracks run and the waits of in-flight proposals; Close waits.
	wg sync.WaitGroup

	// mu guards closed and orders wg.Add before Close's wg.Wait.
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
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Transport == nil {
		return nil, errors.New("meta: Options.Transport is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	logger := opts.Logger.Named("meta").With(zap.Int32("node", cfg.Self.ID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("meta: create %s: %w", dir, err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, raftDBFile)})
	if err != nil {
		return nil, fmt.Errorf("meta: open %s: %w", filepath.Join(dir, raftDBFile), err)
	}
	g := &Group{cfg: cfg, logger: logger, fsm: NewFSM(), store: store, seed: opts.Seed}
	// Raft never blocks on an observer (unlike Config.NotifyCh); a dropped
	// observation is harmless, as one pending is enough for run to read
	// the current leadership.
	g.observations = make(chan raft.Observation, 4)
	g.leaderChanged = make(chan struct{})
	ok := false
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
	r, err := raft.NewRaft(rc, g.fsm, store, store, snaps, opts.Transport)
	if err != nil {
		return nil, fmt.Errorf("meta: start raft: %w", err)
	}
	g.raft = r
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

// notLeader returns the NotLeaderError for this moment.
func (g *Group) notLeader(uncertain bool) error {
	id, addr := g.Leader()
	if id == g.cfg.Self.ID {
		// Raft still names us but refused: leadership is moving.
		id, addr = -1, ""
	}
	return &NotLeaderError{LeaderID: id, LeaderAddress: addr, Uncertain: uncertain}
}

// translate turns a Raft error into this package's.
func (g *Group) translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return g.notLeader(false)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return g.notLeader(true)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("meta: %w: %w", err, kerr.RequestTimedOut)
	}
	return fmt.Errorf("meta: %w", err)
}

// timeout returns how long Raft may take to enqueue: until ctx's
// deadline, or cfg.ProposeTimeout.
func (g *Group) timeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return g.cfg.ProposeTimeout
}

// await waits for f or ctx. A future is always resolved by Raft (at the
// latest by Shutdown), so the goroutine waiting on it ends; Close waits
// for it.
func (g *Group) await(ctx context.Context, f raft.Future) error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return ErrClosed
	}
	done := make(chan error, 1)
	g.wg.Add(1)
	g.mu.RUnlock()
	go func() {
		defer g.wg.Done()
		done <- f.Error()
	}()
	select {
	case err := <-done:
		return g.translate(err)
	case <-ctx.Done():
		return fmt.Errorf("meta: stopped waiting, the outcome is unknown: %w", ctx.Err())
	}
}

// Propose proposes cmd to the metadata group and waits until it is
// applied here. On a follower it returns a *NotLeaderError (unwrapping to
// kerr.NotController) naming the leader, so the caller forwards. A
// refused command returns its Result and Result.Err (a wrapped
// *kerr.Error). If ctx ends first the command may still apply.
func (g *Group) Propose(ctx context.Context, cmd Command) (Result, error) {
	b, err := Encode(cmd)
	if err != nil {
		return Result{}, err
	}
	switch g.raft.State() {
	case raft.Leader:
	case raft.Shutdown:
		return Result{}, ErrClosed
	default:
		return Result{}, g.notLeader(false)
	}
	f := g.raft.Apply(b, g.timeout(ctx))
	if err := g.await(ctx, f); err != nil {
		return Result{}, err
	}
	res, ok := f.Response().(*Result)
	if !ok {
		return Result{}, fmt.Errorf("meta: FSM answered %T", f.Response())
	}
	return *res, res.Err
}

// JoinRequest is a node asking to join a running cluster.
type JoinRequest struct {
	// ClusterID is the joining node's Group.ClusterID: "" for a fresh
	// node, else the cluster its data dir belongs to.
	ClusterID string
	Node      Member
}

// Join registers a node and adds it to the metadata group as a voter. Run
// it on the leader (else *NotLeaderError). A node of another cluster is
// refused with kerr.InconsistentClusterID, a node id or Raft address
// already another node's with kerr.DuplicateBrokerRegistration. Joining
// again with the same id and address is a no-op that updates its Kafka
// address, so a retry after a failure is safe.
func (g *Group) Join(ctx context.Context, req JoinRequest) error {
	if _, err := g.Propose(ctx, &RegisterNode{ClusterID: req.ClusterID, Node: req.Node.node()}); err != nil {
		return fmt.Errorf("register node %d: %w", req.Node.ID, err)
	}
	f := g.raft.AddVoter(serverID(req.Node.ID), raft.ServerAddress(req.Node.RaftAddress), 0, g.timeout(ctx))
	if err := g.await(ctx, f); err != nil {
		return fmt.Errorf("add node %d to the metadata group: %w", req.Node.ID, err)
	}
	g.logger.Info("node joined", zap.Int32("joined", req.Node.ID), zap.String("raft-address", req.Node.RaftAddress))
	return nil
}

// Leave marks a node leaving: placement stops choosing it. Moving its
// replicas away (ReassignPartition) comes next, then Remove. Run it on the
// leader.
func (g *Group) Leave(ctx context.Context, id int32) error {
	if _, err := g.Propose(ctx, &MarkNodeLeaving{NodeID: id}); err != nil {
		return fmt.Errorf("mark node %d leaving: %w", id, err)
	}
	return nil
}

// Remove forgets a leaving node that holds no replicas and removes it
// from the metadata group. Run it on the leader. Idempotent: a node
// already forgotten is still removed from the Raft configuration.
func (g *Group) Remove(ctx context.Context, id int32) error {
	if _, err := g.Propose(ctx, &RemoveNode{NodeID: id}); err != nil && !errors.Is(err, kerr.BrokerIDNotRegistered) {
		return fmt.Errorf("remove node %d: %w", id, err)
	}
	f := g.raft.RemoveServer(serverID(id), 0, g.timeout(ctx))
	if err := g.await(ctx, f); err != nil {
		return fmt.Errorf("remove node %d from the metadata group: %w", id, err)
	}
	g.logger.Info("node removed", zap.Int32("removed", id))
	return nil
}

// Voters returns the node ids of the metadata group's voters in the
// latest Raft configuration this node knows.
func (g *Group) Voters() ([]int32, error) {
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, g.translate(err)
	}
	var ids []int32
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		n, err := strconv.ParseInt(string(s.ID), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("meta: Raft server id %q is not a node id", s.ID)
		}
		ids = append(ids, int32(n))
	}
	return ids, nil
}

// Close stops this node's member of the group: if it is the leader of a
// group with other voters it first hands leadership to one of them
// (bounded by Raft's election timeout), then shuts Raft down, waits for
// every goroutine the group started, and closes the store. The transport
// stays open (its owner closes it). Calling Close again returns nil.
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

// newRaftLogger returns an hclog.Logger for Raft that writes to logger,
// or discards when logger is disabled.
func newRaftLogger(logger *zap.Logger) hclog.Logger {
	if !logger.Core().Enabled(zapcore.ErrorLevel) {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:        "raft",
		Level:       hclog.Info,
		Output:      raftLogWriter{logger: logger.Named("raft")},
		DisableTime: true,
	})
}

// raftLogWriter turns hclog's lines ("[WARN]  raft: message: k=v") into
// zap entries at the matching level.
type raftLogWriter struct {
	logger *zap.Logger
}

func (w raftLogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := zapcore.InfoLevel
	for prefix, l := range map[string]zapcore.Level{"[TRACE]": zapcore.DebugLevel, "[DEBUG]": zapcore.DebugLevel, "[WARN]": zapcore.WarnLevel, "[ERROR]": zapcore.ErrorLevel} {
		if len(line) >= len(prefix) && line[:len(prefix)] == prefix {
			level = l
		}
	}
	if ce := w.logger.Check(level, "raft"); ce != nil {
		ce.Write(zap.String("line", line))
	}
	return len(p), nil
}

var _ io.Writer = raftLogWriter{}
