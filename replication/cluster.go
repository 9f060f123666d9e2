package replication

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/replication/cleaner"
	"github.com/sluice-io/sluice/replication/configs"
	"github.com/sluice-io/sluice/replication/meta"
	"github.com/sluice-io/sluice/replication/quota"
)

var (
	// ErrClosed reports use of a closed Cluster.
	ErrClosed = errors.New("replication: cluster closed")
)

// Broker is one node as Metadata describes it.
type Broker struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   *string
	// Down is set when this node's failure detector (Options.Liveness)
	// holds the broker down: Metadata, DescribeCluster and FindCoordinator
	// leave it out, as Kafka leaves out fenced brokers (LiveBrokers).
	// Never set for this node.
	Down bool
}

// Cluster is this node's view of the cluster: brokers, topics and their
// partition replicas, and producer id allocation. The metadata Raft group
// (package meta) is its source of truth: every change is a proposed
// command, and this node's view follows the applied state (view.go).
// Safe for concurrent use.
type Cluster struct {
	cfg    Config
	fs     log.FS
	logger *zap.Logger
	now    func() time.Time

	group   *meta.Group
	flusher *log.Flusher
	// groupTransport makes partition groups' transports; nil: in memory.
	groupTransport func(group string) (raft.Transport, error)
	// syncObserver is told of the partition logs' syncs (metrics).
	syncObserver log.SyncObserver
	// groupSyncs and groupSyncBytes count the syncs the partitions' Raft
	// log stores make themselves (they do not go through the flusher).
	groupSyncs, groupSyncBytes atomic.Int64
	// space refuses appends while the data dir's disk is nearly full;
	// Open starts its check and Close stops it.
	space *spaceGuard
	// cleaner runs retention and compaction over the replicas; Close stops
	// it before closing them.
	cleaner *cleaner.Cleaner

	// stopReact ends the reaction goroutine and the leader reporter;
	// reacted and reported are closed when they have returned.
	stopReact chan struct{}
	reacted   chan struct{}
	reported  chan struct{}
	// reporter collects this node's partition elections for the metadata
	// (leaders.go).
	reporter *leaderReporter

	// The mover (reassign.go): moveCtx is cancelled by Close, movesDone
	// closed when driveMoves returns; moveWG counts its workers and
	// futureWG the goroutines waiting on Raft futures for them (they
	// end once the groups are shut down). peerClient reaches other
	// nodes (Options.Peers); nil on a single node.
	moveCtx    context.Context
	moveCancel context.CancelFunc
	movesDone  chan struct{}
	// balanceDone is closed when balanceLeaders (elect.go) returns.
	balanceDone      chan struct{}
	moveWG, futureWG sync.WaitGroup
	peerClient       PeerClient
	// liveness is the failure detector behind Broker.Down (liveness.go);
	// nil: every broker is up.
	liveness PeerLiveness
	// moveMu guards moving, the partitions a worker is moving, and
	// settled, those a worker finished since driveMoves last looked.
	moveMu  sync.Mutex
	moving  map[meta.PartitionRef]bool
	settled map[meta.PartitionRef]bool

	// pidMu guards the producer id block of this node (taken without mu;
	// it proposes and waits).
	pidMu           sync.Mutex
	nextProducerID  int64
	producerIDLimit int64 // first id after this node's block

	// quotas is the applied state's Quotas, published for the protocol server's every
	// request without taking mu (held while replicas open or close).
	quotas atomic.Pointer[quota.Set]
	// groupConfigs is the applied state's GroupConfigs, published the same
	// way for ShareGroupConfig (called per ShareFetch).
	groupConfigs atomic.Pointer[map[string]map[string]string]

	// mu guards everything below.
	mu     sync.RWMutex
	closed bool
	// applied is the metadata state the view below reflects.
	applied *meta.State
	// viewChanged is closed, and replaced, each time applied is.
	viewChanged chan struct{}
	topics      map[string]*Topic
	topicsByID  map[[16]byte]*Topic
	// replicas are the partition replicas open on this node, by the
	// incarnation of the partition they hold.
	replicas map[meta.PartitionRef]*Partition
	// effective is the static config with the dynamic broker configs of
	// applied: the topic defaults and schedules in force.
	effective configs.Broker
}

// Open opens this node's member of the metadata group under
// cfg.DataDir/meta (on opts.Transport, or in memory for a single node),
// migrates a single-node cluster.json into it on first start, waits until
// the metadata is loaded, and opens the partition replicas assigned to
// this node under cfg.DataDir/topics. A fresh data dir is initialised
// with a new cluster id.
func Open(cfg Config, opts Options) (*Cluster, error) {
	began := time.Now()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FS == nil {
		opts.FS = log.OSFS{}
	}
	c := &Cluster{
		cfg:         cfg,
		fs:          opts.FS,
		logger:      opts.Logger.Named("replication").With(zap.Int32("node", cfg.NodeID)),
		now:         opts.Now,
		stopReact:   make(chan struct{}),
		reacted:     make(chan struct{}),
		reported:    make(chan struct{}),
		reporter:    newLeaderReporter(),
		applied:     meta.Empty(),
		viewChanged: make(chan struct{}),
		topics:      make(map[string]*Topic),
		topicsByID:  make(map[[16]byte]*Topic),
		replicas:    make(map[meta.PartitionRef]*Partition),
		effective:   cfg.broker(),

		groupTransport: opts.GroupTransport,
		syncObserver:   opts.SyncObserver,

		movesDone:   make(chan struct{}),
		balanceDone: make(chan struct{}),
		moving:      make(map[meta.PartitionRef]bool),
		settled:     make(map[meta.PartitionRef]bool),
		peerClient:  opts.Peers,
		liveness:    opts.Liveness,
	}
	statfs := opts.Statfs
	if statfs == nil {
		statfs = osStatfs
	}
	c.moveCtx, c.moveCancel = context.WithCancel(context.Background())
	for _, dir := range []string{c.metaDir(), c.topicsDir()} {
		if err := c.fs.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("replication: create %s: %w", dir, err)
		}
	}
	mc := cfg.metaConfig()
	seed, err := c.legacySeed(mc.Self)
	if err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	transport := opts.Transport
	if transport == nil {
		if len(mc.InitialMembers) > 1 {
			return nil, fmt.Errorf("replication: %d initial members need a Raft transport; set raft.listen", len(mc.InitialMembers))
		}
		_, transport = raft.NewInmemTransport(raft.ServerAddress(mc.Self.RaftAddress))
	}
	c.group, err = meta.Open(c.metaDir(), mc, meta.Options{Transport: transport, Logger: opts.Logger, Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("replication: open metadata group: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.startTimeout())
	defer cancel()
	if err := c.join(ctx); err != nil {
		c.group.Close()
		return nil, fmt.Errorf("replication: %w", err)
	}
	st, caughtUp, err := c.waitReady(ctx)
	if err != nil {
		c.group.Close()
		return nil, fmt.Errorf("replication: %w", err)
	}
	if seed != nil {
		if err := c.finishMigration(st, seed); err != nil {
			c.group.Close()
			return nil, fmt.Errorf("replication: %w", err)
		}
	}

	c.space = newSpaceGuard(cfg.DataDir, cfg.MinFreeBytes, cfg.SpaceCheckInterval, statfs, c.now, c.logger)
	c.flusher = log.NewFlusher(cfg.Flush, opts.Logger)
	c.flusher.SetSyncObserver(opts.SyncObserver)
	c.mu.Lock()
	c.applyLocked(st)
	c.mu.Unlock()
	// The layers above (the group coordinator first) read this node's
	// partitions as soon as Open returns: the groups it alone replicates
	// must lead, with every entry applied, by then.
	if err := c.waitLocalLeaders(ctx, nil); err != nil {
		c.closeAll()
		return nil, fmt.Errorf("replication: %w", err)
	}
	if caughtUp {
		if err := c.removeOrphans(); err != nil {
			c.closeAll()
			return nil, fmt.Errorf("replication: %w", err)
		}
	}
	c.cleaner = cleaner.Start(c.effective.Cleaner, c.cleanerTargets, cleaner.Options{Logger: c.logger, Now: c.now})
	c.space.start()
	go c.react()
	go c.reportLeaders()
	go c.driveMoves()
	go c.balanceLeaders()
	// One line for the whole start-up: each replica's own lines are Debug,
	// so a node with thousands of partitions does not print thousands.
	opened := c.openedStats()
	c.logger.Info("cluster open", zap.String("cluster-id", st.ClusterID), zap.Int("topics", len(st.Topics)),
		zap.Int("partitions", opened.partitions), zap.Int("segments", opened.segments), zap.Int64("bytes", opened.bytes),
		zap.Uint64("metadata-version", st.Version), zap.Duration("took", time.Since(began)))
	return c, nil
}

// openedReplicas sums the partition replicas open on this node: how many,
// and their logs' segments and bytes (see log.Stats).
type openedReplicas struct {
	partitions, segments int
	bytes                int64
}

// openedStats returns the replicas open on this node, for the start-up
// summary.
func (c *Cluster) openedStats() openedReplicas {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var o openedReplicas
	for _, p := range c.replicas {
		if p.replica == nil {
			continue
		}
		st := p.replica.LogStats()
		o.partitions++
		o.segments += st.Segments
		o.bytes += st.Bytes
	}
	return o
}

// startTimeout bounds Open's wait for the metadata: an election, the
// initialisation of a new cluster and catching up.
func (c *Cluster) startTimeout() time.Duration {
	mc := c.cfg.Meta
	return 4*(mc.HeartbeatTimeout+mc.ElectionTimeout) + 2*mc.ProposeTimeout
}

// waitReady waits until the metadata group has an initialised state. On
// the leader it waits for a barrier too, so the state holds every
// committed command (caughtUp); a follower's state may still lag, and its
// view catches up as the reaction goroutine applies later states.
func (c *Cluster) waitReady(ctx context.Context) (st *meta.State, caughtUp bool, err error) {
	for {
		changed, leaderChanged := c.group.Changed(), c.group.LeaderChanged()
		if s := c.group.State(); s.Initialized() {
			if !c.group.IsLeader() {
				if id, _ := c.group.Leader(); id >= 0 {
					return s, false, nil
				}
			} else if err := c.group.Barrier(ctx); err == nil {
				// The leader re-registers this node when its Kafka
				// address changed (a new port): wait for it, so that
				// Metadata never names the old one.
				s := c.group.State()
				if self, ok := s.Node(c.cfg.NodeID); !ok || self.Host == c.cfg.AdvertisedHost && self.Port == c.cfg.AdvertisedPort {
					return s, true, nil
				}
			} else if nl := (*meta.NotLeaderError)(nil); !errors.As(err, &nl) {
				return nil, false, fmt.Errorf("wait for the metadata: %w", err)
			}
		}
		select {
		case <-changed:
		case <-leaderChanged:
		case <-ctx.Done():
			id, _ := c.group.Leader()
			return nil, false, fmt.Errorf("no initialised metadata within %s (leader %d, version %d); check that a majority of cluster.initial.members is running and reachable: %w",
				c.startTimeout(), id, c.group.State().Version, ctx.Err())
		}
	}
}

func (c *Cluster) metaDir() string   { return path.Join(c.cfg.DataDir, "meta") }
func (c *Cluster) topicsDir() string { return path.Join(c.cfg.DataDir, "topics") }

func (c *Cluster) partitionDir(topic string, index int32) string {
	return path.Join(c.topicsDir(), topic+"-"+strconv.Itoa(int(index)))
}

// ClusterID returns the cluster's id, fixed when it was initialised.
func (c *Cluster) ClusterID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.applied.ClusterID
}

// NodeID returns this broker's id.
func (c *Cluster) NodeID() int32 { return c.cfg.NodeID }

// ControllerID returns the node that handles admin requests: the
// metadata group's leader, or -1 while none is known.
func (c *Cluster) ControllerID() int32 {
	id, _ := c.group.Leader()
	return id
}

// AutoCreateTopics reports whether unknown topics are created on use.
func (c *Cluster) AutoCreateTopics() bool { return c.cfg.AutoCreateTopics }

// DefaultPartitions is the partition count of auto-created topics.
func (c *Cluster) DefaultPartitions() int32 { return c.cfg.DefaultPartitions }

// Brokers returns every node registered in the metadata, by id, each
// marked Down when the failure detector holds it down (LiveBrokers keeps
// the others). The slice is the caller's.
func (c *Cluster) Brokers() []Broker {
	c.mu.RLock()
	s := c.applied
	c.mu.RUnlock()
	ids := s.NodeIDs(false)
	bs := make([]Broker, 0, len(ids))
	for _, id := range ids {
		n, _ := s.Node(id)
		b := Broker{NodeID: n.ID, Host: n.Host, Port: n.Port, Down: c.down(n)}
		if n.Rack != "" {
			rack := n.Rack
			b.Rack = &rack
		}
		bs = append(bs, b)
	}
	return bs
}

// FlushStats returns the node's flusher counters (bench and metrics).
func (c *Cluster) FlushStats() log.FlushStats {
	st := c.flusher.Stats()
	n := c.groupSyncs.Load()
	st.Syncs += n
	st.Rounds += n
	st.Bytes += c.groupSyncBytes.Load()
	return st
}

// observeGroupSync counts a partition Raft log store's sync and passes it
// on to the node's observer.
func (c *Cluster) observeGroupSync(info log.SyncInfo) {
	c.groupSyncs.Add(1)
	c.groupSyncBytes.Add(info.Bytes)
	if c.syncObserver != nil {
		c.syncObserver(info)
	}
}

func (c *Cluster) isClosed() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.closed
}

// Close stops the retention and cleaner goroutines (cancelling a
// compaction in progress) and the reaction to metadata changes, and waits
// for them; closes this node's member of the metadata group; then closes
// every replica (each log is synced and marked clean) and the flusher.
// Later calls return nil.
func (c *Cluster) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	// Wake waitView callers: nothing applies any more.
	close(c.viewChanged)
	c.viewChanged = make(chan struct{})
	c.mu.Unlock()
	// The cleaner and the reaction take mu: wait for them unlocked.
	c.cleaner.Stop()
	c.space.close()
	c.reporter.cancel()
	close(c.stopReact)
	<-c.reacted
	<-c.reported
	c.moveCancel()
	<-c.movesDone
	<-c.balanceDone
	c.moveWG.Wait()
	err := c.group.Close()
	c.mu.Lock()
	closed := len(c.replicas)
	if cerr := c.closeAllLocked(); err == nil {
		err = cerr
	}
	c.mu.Unlock()
	// The groups are shut down: every Raft future a mover waited on is
	// resolved.
	c.futureWG.Wait()
	if ferr := c.flusher.Close(ctx); ferr != nil && err == nil {
		err = ferr
	}
	c.logger.Info("cluster closed", zap.Int("partitions", closed))
	return err
}

// closeAll undoes a failed Open after the replicas were opened.
func (c *Cluster) closeAll() {
	c.moveCancel()
	c.mu.Lock()
	c.closeAllLocked()
	c.mu.Unlock()
	c.group.Close()
	c.flusher.Close(context.Background())
}

// closeParallelism bounds the replicas closed at once on shutdown: each
// close syncs its log and writes its producer snapshot, a few fsyncs that
// the disk serves better in parallel than one after another.
const closeParallelism = 16

func (c *Cluster) closeAllLocked() error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, closeParallelism)
	)
	for _, p := range c.replicas {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := p.closeReplica(); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("replication: close %s-%d: %w", p.Topic, p.Index, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}
