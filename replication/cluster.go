package replication

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/cleaner"
	"github.com/sluice-io/sluice/replication/configs"
)

// producerIDBlockSize is how many producer ids one persisted reservation
// covers.
const producerIDBlockSize = 1000

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
}

// Cluster is this node's view of the cluster: brokers, topics and their
// partition replicas, and producer id allocation. Safe for concurrent use.
type Cluster struct {
	cfg    Config
	fs     log.FS
	logger *zap.Logger
	now    func() time.Time

	flusher *log.Flusher
	// cleaner runs retention and compaction over the replicas; Close stops
	// it before closing them.
	cleaner *cleaner.Cleaner

	// mu guards everything below.
	mu              sync.RWMutex
	closed          bool
	clusterID       string
	topics          map[string]*Topic
	topicsByID      map[[16]byte]*Topic
	nextProducerID  int64
	producerIDLimit int64 // first id not reserved in cluster.json
	// dynamicDefault and dynamicBrokers are the dynamic broker configs
	// (cluster default, and by node id), as persisted; effective is cfg
	// with them applied: the topic defaults and schedules in force.
	dynamicDefault map[string]string
	dynamicBrokers map[string]map[string]string
	effective      configs.Broker
}

// Open loads the topic metadata under cfg.DataDir/meta and opens every
// partition replica under cfg.DataDir/topics. A fresh data dir is
// initialised with a new cluster id.
func Open(cfg Config, opts Options) (*Cluster, error) {
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
		cfg:            cfg,
		fs:             opts.FS,
		logger:         opts.Logger.Named("replication").With(zap.Int32("node", cfg.NodeID)),
		now:            opts.Now,
		topics:         make(map[string]*Topic),
		topicsByID:     make(map[[16]byte]*Topic),
		dynamicBrokers: make(map[string]map[string]string),
	}
	for _, dir := range []string{c.metaDir(), c.topicsDir()} {
		if err := c.fs.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("replication: create %s: %w", dir, err)
		}
	}
	st, ok, err := loadState(c.fs, c.metaDir())
	if err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	if !ok {
		st = state{ClusterID: newClusterID()}
		if err := saveState(c.fs, c.metaDir(), st); err != nil {
			return nil, fmt.Errorf("replication: initialise %s: %w", c.metaDir(), err)
		}
		c.logger.Info("initialised data dir", zap.String("data-dir", cfg.DataDir), zap.String("cluster-id", st.ClusterID))
	}
	c.clusterID = st.ClusterID
	c.nextProducerID = st.ProducerIDBlockEnd
	c.producerIDLimit = st.ProducerIDBlockEnd
	c.dynamicDefault = c.loadBrokerConfigs("", st.DefaultBrokerConfigs)
	for node, configs := range st.BrokerConfigs {
		if kept := c.loadBrokerConfigs(node, configs); kept != nil {
			c.dynamicBrokers[node] = kept
		}
	}
	c.effective = c.layersLocked().Effective()
	if err := c.effective.Validate(); err != nil {
		c.logger.Warn("ignoring stored dynamic broker configs", zap.Error(err))
		c.dynamicDefault, c.dynamicBrokers = nil, make(map[string]map[string]string)
		c.effective = cfg.broker()
	}

	c.flusher = log.NewFlusher(cfg.Flush, opts.Logger)
	c.flusher.SetSyncObserver(opts.SyncObserver)
	for _, ts := range st.Topics {
		t, err := c.openTopic(ts)
		if err != nil {
			c.closeAll()
			return nil, fmt.Errorf("replication: open topic %s: %w", ts.Name, err)
		}
		c.topics[t.name] = t
		c.topicsByID[t.id] = t
	}
	if err := c.removeOrphans(); err != nil {
		c.closeAll()
		return nil, fmt.Errorf("replication: %w", err)
	}
	c.cleaner = cleaner.Start(c.effective.Cleaner, c.cleanerTargets, cleaner.Options{Logger: c.logger, Now: c.now})
	c.logger.Info("cluster open", zap.String("cluster-id", c.clusterID), zap.Int("topics", len(c.topics)))
	return c, nil
}

func (c *Cluster) metaDir() string   { return path.Join(c.cfg.DataDir, "meta") }
func (c *Cluster) topicsDir() string { return path.Join(c.cfg.DataDir, "topics") }

func (c *Cluster) partitionDir(topic string, index int32) string {
	return path.Join(c.topicsDir(), topic+"-"+strconv.Itoa(int(index)))
}

// partitionOptions returns the options every replica on this node shares.
func (c *Cluster) partitionOptions() partition.Options {
	return partition.Options{
		Logger:  c.logger.WithOptions(),
		Now:     c.now,
		FS:      c.fs,
		Flusher: c.flusher,
		Durable: c.cfg.Flush.Interval == 0,
	}
}

// removeOrphans deletes partition directories that belong to no topic: the
// leftovers of a delete interrupted by a crash.
func (c *Cluster) removeOrphans() error {
	names, err := c.fs.ReadDir(c.topicsDir())
	if err != nil {
		return fmt.Errorf("list %s: %w", c.topicsDir(), err)
	}
	for _, name := range names {
		i := strings.LastIndexByte(name, '-')
		if i > 0 {
			if t, ok := c.topics[name[:i]]; ok {
				if n, err := strconv.Atoi(name[i+1:]); err == nil && n < len(t.partitions) {
					continue
				}
			}
		}
		c.logger.Warn("removing partition directory of no topic", zap.String("dir", name))
		if err := c.fs.RemoveAll(path.Join(c.topicsDir(), name)); err != nil {
			return fmt.Errorf("remove orphan %s: %w", name, err)
		}
	}
	return nil
}

// ClusterID returns the id generated when the data dir was initialised.
func (c *Cluster) ClusterID() string { return c.clusterID }

// NodeID returns this broker's id.
func (c *Cluster) NodeID() int32 { return c.cfg.NodeID }

// ControllerID returns the node that handles admin requests.
func (c *Cluster) ControllerID() int32 { return c.cfg.NodeID }

// AutoCreateTopics reports whether unknown topics are created on use.
func (c *Cluster) AutoCreateTopics() bool { return c.cfg.AutoCreateTopics }

// DefaultPartitions is the partition count of auto-created topics.
func (c *Cluster) DefaultPartitions() int32 { return c.cfg.DefaultPartitions }

// Brokers returns every broker in the cluster.
func (c *Cluster) Brokers() []Broker {
	return []Broker{{NodeID: c.cfg.NodeID, Host: c.cfg.AdvertisedHost, Port: c.cfg.AdvertisedPort}}
}

// FlushStats returns the node's flusher counters (bench and metrics).
func (c *Cluster) FlushStats() log.FlushStats { return c.flusher.Stats() }

// AllocateProducerID returns a producer id never handed out before by
// this cluster, persisting a new block reservation when needed.
func (c *Cluster) AllocateProducerID(ctx context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, ErrClosed
	}
	if c.nextProducerID >= c.producerIDLimit {
		limit := c.producerIDLimit + producerIDBlockSize
		if err := c.saveLocked(func(st *state) { st.ProducerIDBlockEnd = limit }); err != nil {
			return 0, err
		}
		c.producerIDLimit = limit
	}
	id := c.nextProducerID
	c.nextProducerID++
	return id, nil
}

// Close stops the retention and cleaner goroutines (cancelling a
// compaction in progress) and waits for them, then closes every replica
// (each log is synced and marked clean) and the flusher. Later calls
// return nil.
func (c *Cluster) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	// The cleaner takes mu to list topics: wait for it unlocked.
	c.cleaner.Stop()
	c.mu.Lock()
	err := c.closeAllLocked()
	c.mu.Unlock()
	if ferr := c.flusher.Close(ctx); ferr != nil && err == nil {
		err = ferr
	}
	c.logger.Info("cluster closed")
	return err
}

func (c *Cluster) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeAllLocked()
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
	for _, t := range c.topics {
		for _, p := range t.partitions {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := p.replica.Close(); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("replication: close %s-%d: %w", p.Topic, p.Index, err)
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return first
}

// newClusterID returns a random 22-character URL-safe id, as Kafka's.
func newClusterID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
