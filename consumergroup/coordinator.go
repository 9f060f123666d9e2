package consumergroup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
)

// Coordinator is the group coordinator of every consumer group whose
// __consumer_offsets partition this node leads (on a single node: all).
// Every method takes a kmsg request whose version is set and returns the
// response of the same version (req.ResponseKind()), never nil; errors are
// error codes in the response. Safe for concurrent use.
type Coordinator struct {
	cluster    *replication.Cluster
	cfg        Config
	logger     *zap.Logger
	partitions []*replication.Partition

	// loaded[i] is set once partition i of __consumer_offsets is loaded;
	// until then requests for its groups answer
	// COORDINATOR_LOAD_IN_PROGRESS. loadDone is closed when the loader
	// has finished with every partition.
	loaded   []atomic.Bool
	loadDone chan struct{}

	// ctx is cancelled by Close: it ends the loader, the expiry loop,
	// blocked joins and syncs and waits for commits.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts every goroutine and timer callback of the coordinator and
	// every request in progress; Close waits for it. Add only via enter.
	wg sync.WaitGroup

	// mu guards closed and groups. Lock order: group.mu before mu; mu is
	// never held while taking a group's lock.
	mu     sync.RWMutex
	closed bool
	groups map[string]*group
}

// New creates __consumer_offsets if it does not exist (internal,
// cleanup.policy=compact) and loads every group's committed offsets and
// metadata from it. Until loading finishes, group requests answer
// COORDINATOR_LOAD_IN_PROGRESS.
func New(cluster *replication.Cluster, cfg Config, opts Options) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("consumergroup")

	t, ok := cluster.Topic(OffsetsTopic)
	if !ok {
		var err error
		t, err = cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{
			Name:              OffsetsTopic,
			Partitions:        cfg.OffsetsTopicPartitions,
			ReplicationFactor: -1,
			Internal:          true,
			Configs:           map[string]string{"cleanup.policy": "compact"},
		})
		if errors.Is(err, kerr.TopicAlreadyExists) {
			t, ok = cluster.Topic(OffsetsTopic)
			if !ok {
				return nil, fmt.Errorf("consumergroup: %s exists and does not", OffsetsTopic)
			}
		} else if err != nil {
			return nil, fmt.Errorf("consumergroup: create %s: %w", OffsetsTopic, err)
		}
	}
	c := &Coordinator{
		cluster:    cluster,
		cfg:        cfg,
		logger:     logger,
		partitions: t.Partitions(),
		loadDone:   make(chan struct{}),
		groups:     make(map[string]*group),
	}
	c.loaded = make([]atomic.Bool, len(c.partitions))
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(2)
	go c.load()
	go c.expireLoop()
	return c, nil
}

// WaitLoaded blocks until every partition of __consumer_offsets has been
// loaded (or failed to load and been logged), ctx ends (its error) or the
// coordinator closes (ErrClosed).
func (c *Coordinator) WaitLoaded(ctx context.Context) error {
	select {
	case <-c.loadDone:
		if c.ctx.Err() != nil {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

// ErrClosed is what WaitLoaded returns after Close.
var ErrClosed = errors.New("consumergroup: coordinator closed")

// Close stops the coordinator's timers and goroutines and fails pending
// joins and syncs with NOT_COORDINATOR; it waits for them to exit, or for
// ctx to end (its error). Later calls return nil.
func (c *Coordinator) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	groups := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, g)
	}
	c.mu.Unlock()

	c.cancel()
	for _, g := range groups {
		g.mu.Lock()
		g.stopTimers()
		for _, m := range g.members {
			if m.join != nil {
				m.join <- joinResult{errorCode: kerr.NotCoordinator.Code, memberID: m.id, generation: -1}
				m.join = nil
			}
			if m.sync != nil {
				m.sync <- syncResult{errorCode: kerr.NotCoordinator.Code}
				m.sync = nil
			}
		}
		g.mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		c.logger.Info("coordinator closed")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("consumergroup: close: %w", ctx.Err())
	}
}

// enter admits a request, timer callback or goroutine: false after
// Close. A true return must be paired with c.wg.Done.
func (c *Coordinator) enter() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// afterFunc runs fn after d unless the coordinator closed first; Close
// waits for a running fn.
func (c *Coordinator) afterFunc(d time.Duration, fn func()) *time.Timer {
	return time.AfterFunc(d, func() {
		if !c.enter() {
			return
		}
		defer c.wg.Done()
		fn()
	})
}

// partitionFor is the __consumer_offsets partition of group, as Kafka:
// abs(group.hashCode()) mod partitions.
func (c *Coordinator) partitionFor(group string) int32 {
	return partitionFor(group, int32(len(c.partitions)))
}

// isLoading reports whether group's partition is still being loaded.
func (c *Coordinator) isLoading(group string) bool {
	return !c.loaded[c.partitionFor(group)].Load()
}

// lookup returns the group, nil if unknown.
func (c *Coordinator) lookup(id string) *group {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.groups[id]
}

// lookupOrCreate returns the group, creating it Empty if unknown.
func (c *Coordinator) lookupOrCreate(id string) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.groups[id]
	if !ok {
		g = newGroup(c, id)
		c.groups[id] = g
	}
	return g
}

// lockLive returns the group locked and not Dead, created when create is
// set; nil (unlocked) when unknown and not created.
func (c *Coordinator) lockLive(id string, create bool) *group {
	for {
		var g *group
		if create {
			g = c.lookupOrCreate(id)
		} else if g = c.lookup(id); g == nil {
			return nil
		}
		g.mu.Lock()
		if g.state != stateDead {
			return g
		}
		// Died between lookup and lock; it is gone from the map now.
		g.mu.Unlock()
		if !create {
			return nil
		}
	}
}

// snapshot returns every group, sorted by id.
func (c *Coordinator) snapshot() []*group {
	c.mu.RLock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	c.mu.RUnlock()
	sort.Slice(gs, func(i, j int) bool { return gs[i].id < gs[j].id })
	return gs
}

// kill makes g Dead and forgets it. g.mu is held.
func (g *group) kill() {
	g.stopTimers()
	g.transition(stateDead)
	g.c.mu.Lock()
	if g.c.groups[g.id] == g {
		delete(g.c.groups, g.id)
	}
	g.c.mu.Unlock()
}

// maybeDrop forgets a group that holds nothing (one created by a request
// that failed). g.mu is held.
func (g *group) maybeDrop() {
	if g.isEmptyAndUnused() {
		g.kill()
	}
}

// appendRecords writes records as one batch to g's partition of
// __consumer_offsets, in the order of g's in-memory changes (g.mu is
// held). It returns the partition and the batch's base offset; the
// batch is not yet committed (see waitCommitted).
func (g *group) appendRecords(records []record) (*replication.Partition, int64, error) {
	p := g.c.partitions[g.partition]
	res, err := p.Append(encodeBatch(records, time.Now().UnixMilli()))
	if err != nil {
		return nil, 0, fmt.Errorf("consumergroup: write %d records of group %q to %s-%d: %w", len(records), g.id, OffsetsTopic, g.partition, err)
	}
	return p, res.BaseOffset, nil
}

// waitCommitted waits until offset last of p is committed, ctx ends or the
// coordinator closes.
func (c *Coordinator) waitCommitted(ctx context.Context, p *replication.Partition, last int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()
	return p.WaitCommitted(ctx, last)
}

// afterCommit waits for offset last of p as waitCommitted and then calls
// apply with the outcome. When ctx ends first, the write still goes on:
// apply runs later, when it commits (or the coordinator closes), so
// memory never misses a write the log has.
func (c *Coordinator) afterCommit(ctx context.Context, p *replication.Partition, last int64, apply func(error)) error {
	err := c.waitCommitted(ctx, p, last)
	if err != nil && ctx.Err() != nil && c.ctx.Err() == nil && c.enter() {
		go func() {
			defer c.wg.Done()
			apply(c.waitCommitted(c.ctx, p, last))
		}()
		return err
	}
	apply(err)
	return err
}

// storageError turns a failed write or wait into the code a client
// retries, logging what is not a plain shutdown or timeout.
func (c *Coordinator) storageError(err error, what string) *kerr.Error {
	var ke *kerr.Error
	switch {
	case c.ctx.Err() != nil, errors.Is(err, partition.ErrClosed), errors.Is(err, replication.ErrClosed):
		return kerr.NotCoordinator
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return kerr.InvalidCommitOffsetSize
	case errors.As(err, &ke):
		c.logger.Warn("write to "+OffsetsTopic+" rejected", zap.String("what", what), zap.Error(err))
		return kerr.UnknownServerError
	default:
		c.logger.Error("write to "+OffsetsTopic+" failed", zap.String("what", what), zap.Error(err))
		return kerr.UnknownServerError
	}
}

// metadataRecord is the group metadata record of g's current generation
// with the given assignments (nil: each member's current one); g.mu is
// held.
func (g *group) metadataRecord(assignments map[string][]byte) record {
	v := kmsg.GroupMetadataValue{
		Version:               groupMetadataValueVersion,
		ProtocolType:          g.protocolType,
		Generation:            g.generation,
		CurrentStateTimestamp: g.stateTimestamp.UnixMilli(),
	}
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	for _, m := range g.sortedMembers() {
		assignment := m.assignment
		if assignments != nil {
			assignment = assignments[m.id]
		}
		if assignment == nil {
			assignment = []byte{}
		}
		subscription := m.metadataFor(g.protocol)
		if subscription == nil {
			subscription = []byte{}
		}
		v.Members = append(v.Members, kmsg.GroupMetadataValueMember{
			MemberID:               m.id,
			InstanceID:             m.instanceID,
			ClientID:               m.clientID,
			ClientHost:             m.clientHost,
			RebalanceTimeoutMillis: int32(m.rebalanceTimeout / time.Millisecond),
			SessionTimeoutMillis:   int32(m.sessionTimeout / time.Millisecond),
			Subscription:           subscription,
			Assignment:             assignment,
		})
	}
	g.hasMetadata = true
	return record{key: groupMetadataKey(g.id), value: v.AppendTo(nil)}
}
