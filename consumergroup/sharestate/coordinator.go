package sharestate

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
)

// Coordinator is the share coordinator of every share-partition whose
// __share_group_state partition this node leads; requests for other keys
// answer NOT_COORDINATOR. It follows leadership lazily, as the group and
// transaction coordinators do (see doc.go). The kmsg methods (api.go)
// serve the wire APIs; Router reaches it from anywhere. Safe for
// concurrent use.
type Coordinator struct {
	cluster    consumergroup.Cluster
	logger     *zap.Logger
	now        func() time.Time
	partitions int32 // of __share_group_state
	self       int32

	// mu guards the fields below. Nothing waits for I/O while holding
	// it: a record is appended under it (so the log holds changes in the
	// order they were made in memory) and its commit awaited outside.
	mu     sync.Mutex
	closed bool
	// owned is, per __share_group_state partition, the leader epoch its
	// keys were loaded in, or the load under way, and the keys.
	owned []ownership

	// ctx ends at Close: commit waits stop.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts loads and commit waits, so Close can wait.
	wg sync.WaitGroup
}

// entry is one key's state as of the last record appended for it
// (committed or not), and that record's commit.
type entry struct {
	state State
	// commit is the commit of the last record appended for the key; nil
	// once it is known committed. Answers that show state wait for it,
	// so they never show a change that is not durable.
	commit *commit
}

// commit is the outcome of one appended record, known once done is
// closed: err is nil when it is committed.
type commit struct {
	done chan struct{}
	err  error
}

// wait returns the commit's outcome, or ctx's error first.
func (m *commit) wait(ctx context.Context) error {
	if m == nil {
		return nil
	}
	select {
	case <-m.done:
		return m.err
	case <-ctx.Done():
		return &failure{kerr.RequestTimedOut, "wait for a " + TopicName + " record: " + ctx.Err().Error()}
	}
}

// New creates __share_group_state if it does not exist (internal,
// cleanup.policy=compact, replication factor capped at the live nodes)
// and loads the keys of every partition this node leads already; a
// partition it comes to lead later is loaded on the first request that
// needs it. The cluster is a *replication.Cluster in production (see
// consumergroup.ClusterOf).
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
		logger:  opts.Logger.Named("sharestate"),
		now:     opts.Now,
		self:    cluster.NodeID(),
		ctx:     ctx,
		cancel:  cancel,
	}
	t, err := consumergroup.EnsureInternalTopic(cluster, TopicName, cfg.StateTopicPartitions, cfg.StateTopicReplicationFactor)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("sharestate: %w", err)
	}
	c.partitions = t.PartitionCount()
	c.owned = make([]ownership, c.partitions)
	began := time.Now()
	if err := c.loadLed(); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("sharestate: load %s: %w", TopicName, err)
	}
	c.mu.Lock()
	n := 0
	for _, o := range c.owned {
		n += len(o.keys)
	}
	c.mu.Unlock()
	c.logger.Info("share coordinator loaded", zap.Int("share-partitions", n), zap.Int32("partitions", c.partitions), zap.Duration("took", time.Since(began)))
	return c, nil
}

// Close stops the coordinator: requests answer NOT_COORDINATOR, and
// loads and commit waits end; it waits for them, or ctx.
func (c *Coordinator) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
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

// CoordinatorKey is Kafka's share coordinator key of k,
// "group:topicId:partition" with the topic id in Kafka's text form
// (unpadded URL-safe base64): what FindCoordinator key type 2 carries.
func CoordinatorKey(k Key) string {
	return k.Group + ":" + base64.RawURLEncoding.EncodeToString(k.TopicID[:]) + ":" + strconv.Itoa(int(k.Partition))
}

// PartitionFor returns the __share_group_state partition holding k, of
// partitions partitions, as Kafka computes it:
// abs(javaHashCode(CoordinatorKey(k))) mod partitions.
func PartitionFor(k Key, partitions int32) int32 {
	return consumergroup.PartitionFor(CoordinatorKey(k), partitions)
}

// partitionFor returns the __share_group_state partition of k.
func (c *Coordinator) partitionFor(k Key) int32 { return PartitionFor(k, c.partitions) }

// handle returns the handle of __share_group_state partition p, nil when
// the topic is not in this node's view.
func (c *Coordinator) handle(p int32) consumergroup.Partition {
	t, ok := c.cluster.Topic(TopicName)
	if !ok || p < 0 || p >= t.PartitionCount() {
		return nil
	}
	return t.Partition(p)
}

// Leader returns the node coordinating k now (the leader of its
// __share_group_state partition in this node's view), -1 when none is
// known.
func (c *Coordinator) Leader(k Key) int32 {
	h := c.handle(c.partitionFor(k))
	if h == nil {
		return -1
	}
	node, _ := h.Leader()
	return node
}

// NodeID returns this node's id.
func (c *Coordinator) NodeID() int32 { return c.self }

// failure is an outcome the protocol names (code) with what led to it;
// errors.Is(f, code) holds.
type failure struct {
	code *kerr.Error
	msg  string
}

func (f *failure) Error() string { return f.msg + ": " + f.code.Message }
func (f *failure) Unwrap() error { return f.code }

// codeOf returns the protocol error of err, UNKNOWN_SERVER_ERROR for one
// the protocol does not name; nil for nil.
func codeOf(err error) *kerr.Error {
	var f *failure
	var ke *kerr.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &f):
		return f.code
	case errors.As(err, &ke):
		return ke
	}
	return kerr.UnknownServerError
}

// storeError turns a failed append or commit into the error a caller
// retries on: NOT_COORDINATOR when this node no longer leads the
// partition or its storage failed, REQUEST_TIMED_OUT when the wait ended
// first, COORDINATOR_NOT_AVAILABLE for anything else.
func storeError(err error) error {
	var ke *kerr.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &failure{kerr.RequestTimedOut, err.Error()}
	case errors.Is(err, partition.ErrClosed), errors.Is(err, kerr.NotLeaderForPartition),
		errors.Is(err, kerr.KafkaStorageError), log.IsStorageError(err):
		return &failure{kerr.NotCoordinator, err.Error()}
	case errors.As(err, &ke):
		return &failure{ke, err.Error()}
	}
	return &failure{kerr.CoordinatorNotAvailable, err.Error()}
}
