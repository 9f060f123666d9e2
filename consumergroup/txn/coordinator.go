package txn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
)

// MarkerWriter writes transaction markers on the partitions of a
// transaction, wherever their leaders are. The wire layer implements it
// (local leaders directly, others with WriteTxnMarkers); the coordinator
// retries what it could not write.
type MarkerWriter interface {
	// WriteTxnMarkers writes marker m on each of partitions and returns
	// those it could not write, with why; nil when every one is written
	// (committed). A partition whose topic no longer exists counts as
	// written. It may block until ctx ends.
	WriteTxnMarkers(ctx context.Context, m partition.TxnMarker, partitions []TopicPartition) map[TopicPartition]error
}

// Coordinator is the transaction coordinator of every transactional id
// whose __transaction_state partition this node leads; requests for other
// ids answer NOT_COORDINATOR. It follows leadership lazily, as the group
// coordinator does (see doc.go). Every request method takes a kmsg request
// whose version is set and returns the response of the same version, never
// nil, with outcomes as error codes. Safe for concurrent use.
type Coordinator struct {
	cluster    consumergroup.Cluster
	cfg        Config
	logger     *zap.Logger
	now        func() time.Time
	partitions int32 // of __transaction_state
	self       int32

	// mu guards every transactional id and the fields below. Nothing
	// waits for I/O while holding it.
	mu     sync.Mutex
	closed bool
	txns   map[string]*metadata
	// owned is, per __transaction_state partition, the leader epoch its
	// ids were loaded in, or the load under way.
	owned   []ownership
	markers MarkerWriter

	abortTimer, expireTimer *time.Timer
	// abortRuns counts the checks for timed-out transactions (tests wait
	// on it).
	abortRuns atomic.Int64
	// ctx ends at Close: marker writes and their retries stop.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts loads and marker senders, so Close can wait.
	wg sync.WaitGroup
}

// New creates __transaction_state if it does not exist (internal,
// cleanup.policy=compact, replication factor capped at the live nodes)
// and loads the transactional ids of every partition this node leads
// already; a partition it comes to lead later is loaded on the first
// request that needs it. Markers of transactions found half-completed are
// written once SetMarkerWriter is called. The cluster is a
// *replication.Cluster in production (see consumergroup.ClusterOf).
func New[T consumergroup.TopicOf[P], P consumergroup.Partition](concrete consumergroup.ClusterOf[T, P], cfg Config, opts Options) (*Coordinator, error) {
	cluster := consumergroup.ViewCluster(concrete)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if cfg.StateTopicReplicationFactor == 0 {
		cfg.StateTopicReplicationFactor = DefaultConfig().StateTopicReplicationFactor
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coordinator{
		cluster: cluster,
		cfg:     cfg,
		logger:  opts.Logger.Named("txn"),
		now:     opts.Now,
		self:    cluster.NodeID(),
		txns:    make(map[string]*metadata),
		ctx:     ctx,
		cancel:  cancel,
	}
	t, err := consumergroup.EnsureInternalTopic(cluster, StateTopic, cfg.StateTopicPartitions, cfg.StateTopicReplicationFactor)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("txn: %w", err)
	}
	c.partitions = t.PartitionCount()
	c.owned = make([]ownership, c.partitions)
	began := time.Now()
	if err := c.loadLed(); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("txn: load %s: %w", StateTopic, err)
	}
	c.mu.Lock()
	c.abortTimer = time.AfterFunc(cfg.AbortTimedOutInterval, c.abortTimedOut)
	c.expireTimer = time.AfterFunc(cfg.RemoveExpiredInterval, c.removeExpired)
	n := len(c.txns)
	c.mu.Unlock()
	c.logger.Info("transaction coordinator loaded", zap.Int("transactional-ids", n), zap.Int32("partitions", c.partitions), zap.Duration("took", time.Since(began)))
	return c, nil
}

// SetMarkerWriter sets how markers are written (the wire server); until
// it is called, transactions that end wait for it. Call it once, before
// serving.
func (c *Coordinator) SetMarkerWriter(w MarkerWriter) {
	c.mu.Lock()
	c.markers = w
	c.mu.Unlock()
}

// Close stops the coordinator's timers and marker writes and waits for
// loads and marker senders to end, or ctx.
func (c *Coordinator) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.abortTimer != nil {
		c.abortTimer.Stop()
	}
	if c.expireTimer != nil {
		c.expireTimer.Stop()
	}
	c.mu.Unlock()
	c.cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// partitionFor returns the __transaction_state partition of a
// transactional id, as Kafka computes it.
func (c *Coordinator) partitionFor(id string) int32 {
	return consumergroup.PartitionFor(id, c.partitions)
}

// handle returns the handle of __transaction_state partition p, nil when
// the topic is not in this node's view.
func (c *Coordinator) handle(p int32) consumergroup.Partition {
	t, ok := c.cluster.Topic(StateTopic)
	if !ok || p < 0 || p >= t.PartitionCount() {
		return nil
	}
	return t.Partition(p)
}

// lockID starts a request naming transactional id: it returns 0 with c.mu
// held, or INVALID_REQUEST (empty id), NOT_COORDINATOR or
// COORDINATOR_LOAD_IN_PROGRESS without it.
func (c *Coordinator) lockID(id string) int16 {
	if id == "" {
		return kerr.InvalidRequest.Code
	}
	c.mu.Lock()
	if code := c.coordinatorLocked(c.partitionFor(id)); code != 0 {
		c.mu.Unlock()
		return code
	}
	return 0
}

// persist makes next, the new state of m (m itself when m is new and
// already in c.txns), durable and then installs it in m. c.mu is held on
// entry and on return; it is released while the record is awaited, with
// m pending so that other requests for the id answer
// CONCURRENT_TRANSACTIONS meanwhile. It returns 0 or the error code for
// the client: NOT_COORDINATOR when this node lost the partition, which
// then drops m (the next coordinator reloads it from the log).
func (c *Coordinator) persist(ctx context.Context, m, next *metadata) int16 {
	if !transitionAllowed(m.state, next.state) && m != next {
		c.logger.Error("illegal transaction state change refused", zap.String("transactional-id", m.id),
			zap.Stringer("from", m.state), zap.Stringer("to", next.state))
		return kerr.UnknownServerError.Code
	}
	p := c.partitionFor(m.id)
	epoch, loaded := c.ownedEpochLocked(p)
	h := c.handle(p)
	if h == nil || !loaded {
		return kerr.NotCoordinator.Code
	}
	if node, now := h.Leader(); node != c.self || now != epoch {
		return kerr.NotCoordinator.Code
	}
	res, err := h.Append(context.Background(), encodeRecord(next, c.now()))
	if err != nil {
		return storeErrorCode(err)
	}
	m.pending = true
	c.mu.Unlock()
	werr := res.Wait(ctx)
	c.mu.Lock()
	m.pending = false
	if werr != nil {
		// The record may still become durable: what is in memory can
		// no longer be trusted to match the log. Drop the partition;
		// the next request reloads it.
		if e, ok := c.ownedEpochLocked(p); ok && e == epoch {
			c.unloadLocked(p, "a state record was not confirmed")
		}
		return storeErrorCode(werr)
	}
	if e, ok := c.ownedEpochLocked(p); !ok || e != epoch || c.txns[m.id] != m {
		return kerr.NotCoordinator.Code
	}
	*m = *next
	m.pending = false
	if m.state == stateDead {
		delete(c.txns, m.id)
	}
	return 0
}

// storeErrorCode turns a failed store into the code clients retry on.
func storeErrorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, partition.ErrClosed), errors.Is(err, kerr.NotLeaderForPartition):
		return kerr.NotCoordinator.Code
	case errors.Is(err, kerr.KafkaStorageError), log.IsStorageError(err):
		return kerr.NotCoordinator.Code
	case errors.As(err, &ke):
		return ke.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

// fencedCode is PRODUCER_FENCED from version fencedFrom of an API on
// (KIP-588), INVALID_PRODUCER_EPOCH before.
func fencedCode(version, fencedFrom int16) int16 {
	if version < fencedFrom {
		return kerr.InvalidProducerEpoch.Code
	}
	return kerr.ProducerFenced.Code
}
