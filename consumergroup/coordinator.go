package consumergroup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication/configs"
)

// Coordinator is the group coordinator of every consumer group whose
// __consumer_offsets partition this node leads (on a single node: all);
// requests for other groups answer NOT_COORDINATOR. It follows leadership
// lazily: see coordinatorLocked.
// Every method takes a kmsg request whose version is set and returns the
// response of the same version (req.ResponseKind()), never nil; errors are
// error codes in the response. Safe for concurrent use.
type Coordinator struct {
	cluster Cluster
	cfg     Config
	// shareConfigs resolves a share group's configs (the cluster's
	// ShareGroupConfig), nil for the defaults; states holds the
	// share-partition state store (SetShareStates), nil when none is
	// wired.
	shareConfigs func(group string) configs.ShareGroup
	states       atomic.Pointer[shareStoreBox]
	logger       *zap.Logger
	partitions   int32 // of __consumer_offsets
	self         int32 // this node's id

	// mu guards every group and the fields below. Timers take it before
	// touching a group; nothing waits for I/O while holding it.
	mu     sync.Mutex
	closed bool
	groups map[string]*group
	// shareGroups are the share groups (KIP-932); a group id names a
	// classic group or a share group, never both.
	shareGroups map[string]*shareGroup
	// owned is, per __consumer_offsets partition, the leader epoch its
	// groups were loaded in, or the load under way.
	owned []ownership
	// loadEnded is closed (and replaced) whenever a partition load ends.
	loadEnded chan struct{}

	expiry *time.Timer
	// wg counts requests waiting for a durable write and partition loads,
	// so Close can wait.
	wg sync.WaitGroup
}

// New creates __consumer_offsets if it does not exist (internal,
// cleanup.policy=compact, replication factor
// Config.OffsetsTopicReplicationFactor capped at the live nodes) and loads
// the committed offsets and metadata of the groups of every partition this
// node leads already; a partition it comes to lead later is loaded on the
// first request that needs it. The cluster is a *replication.Cluster in
// production (see ClusterOf).
func New[T TopicOf[P], P Partition](concrete ClusterOf[T, P], cfg Config, opts Options) (*Coordinator, error) {
	cluster := viewCluster(concrete)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if cfg.OffsetsTopicReplicationFactor == 0 {
		cfg.OffsetsTopicReplicationFactor = DefaultConfig().OffsetsTopicReplicationFactor
	}
	cfg = cfg.withShareDefaults()
	if cfg.OffsetsRetentionCheckInterval == 0 {
		cfg.OffsetsRetentionCheckInterval = DefaultConfig().OffsetsRetentionCheckInterval
	}
	c := &Coordinator{
		cluster: cluster,
		cfg:     cfg,
		logger:  opts.Logger.Named("consumergroup"),
		groups:  make(map[string]*group),
		self:    cluster.NodeID(),

		shareGroups: make(map[string]*shareGroup),

		loadEnded: make(chan struct{}),
	}
	t, err := EnsureInternalTopic(cluster, OffsetsTopic, cfg.OffsetsTopicPartitions, cfg.OffsetsTopicReplicationFactor)
	if err != nil {
		return nil, fmt.Errorf("consumergroup: %w", err)
	}
	if opts.SharePersister != nil {
		c.SetShareStates(opts.SharePersister)
	}
	if sc, ok := any(concrete).(interface {
		ShareGroupConfig(group string) configs.ShareGroup
	}); ok {
		c.shareConfigs = sc.ShareGroupConfig
	}
	c.partitions = t.PartitionCount()
	c.owned = make([]ownership, c.partitions)
	began := time.Now()
	if err := c.loadLed(); err != nil {
		c.Close(context.Background())
		return nil, fmt.Errorf("consumergroup: load %s: %w", OffsetsTopic, err)
	}
	c.mu.Lock()
	c.expiry = time.AfterFunc(cfg.OffsetsRetentionCheckInterval, c.expireOffsets)
	groups := len(c.groups)
	c.mu.Unlock()
	c.logger.Info("group coordinator loaded", zap.Int("groups", groups), zap.Int32("partitions", c.partitions), zap.Duration("took", time.Since(began)))
	return c, nil
}

// Close stops the coordinator's timers and answers pending joins and syncs
// with NOT_COORDINATOR; it waits for commits being written.
func (c *Coordinator) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.expiry != nil {
		c.expiry.Stop()
	}
	for _, g := range c.groups {
		c.stopTimersLocked(g)
		for _, m := range g.members {
			answerJoin(m, errJoin(kerr.NotCoordinator.Code, m.id))
			answerSync(m, kerr.NotCoordinator.Code, nil)
		}
	}
	for _, g := range c.shareGroups {
		stopShareTimersLocked(g)
	}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Coordinator) stopTimersLocked(g *group) {
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	for _, t := range g.pending {
		t.Stop()
	}
	for _, m := range g.members {
		if m.sessionTimer != nil {
			m.sessionTimer.Stop()
		}
	}
}

// lockGroupRequest starts a request naming group: it returns 0 with c.mu
// held, or INVALID_GROUP_ID, NOT_COORDINATOR (closed, or the group's
// partition is not led here) or COORDINATOR_LOAD_IN_PROGRESS without it.
func (c *Coordinator) lockGroupRequest(group string) int16 {
	if group == "" {
		return kerr.InvalidGroupID.Code
	}
	c.mu.Lock()
	if code := c.checkGroupLocked(group); code != 0 {
		c.mu.Unlock()
		return code
	}
	return 0
}

// checkGroupLocked returns 0 when this node coordinates group now, else
// NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS. c.mu is held.
func (c *Coordinator) checkGroupLocked(group string) int16 {
	if c.closed {
		return kerr.NotCoordinator.Code
	}
	return c.coordinatorLocked(c.partitionFor(group))
}

// partitionFor returns the __consumer_offsets partition of a group, as
// Kafka computes it: Utils.abs(Java String.hashCode) mod partitions.
func (c *Coordinator) partitionFor(group string) int32 {
	return partitionFor(group, c.partitions)
}

// partitionFor is Kafka's GroupMetadataManager.partitionFor. Its
// Utils.abs is Math.abs with MinInt32 mapped to 0, not the producer's
// toPositive (n & 0x7fffffff): the two differ for every negative hash.
func partitionFor(group string, partitions int32) int32 {
	h := javaStringHashCode(group)
	switch {
	case h == math.MinInt32:
		h = 0
	case h < 0:
		h = -h
	}
	return h % partitions
}

// javaStringHashCode is Java's String.hashCode over UTF-16 code units.
func javaStringHashCode(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// newMemberID returns a member id as Kafka builds them: client id, a dash
// and a random UUID.
func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return clientID + "-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// FindCoordinator answers for group keys (key type 0): the node leading
// the group's partition hash(group) mod OffsetsTopicPartitions of
// __consumer_offsets, with its Kafka address; COORDINATOR_NOT_AVAILABLE
// while no leader is known (an election, or a leader not among the
// registered brokers) or the failure detector holds the leader down
// (replication.Broker.Down), as Kafka never names a fenced broker: clients
// retry. Transaction (type 1) and share-partition (type 2) keys reach it
// only on a node without their coordinators: COORDINATOR_NOT_AVAILABLE.
// Handles batched keys (v4+).
func (c *Coordinator) FindCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	if req.CoordinatorType != 0 {
		// Transactional ids and share-partitions reach their own
		// coordinators; on a node without them they have none.
		resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
		code, msg := kerr.InvalidRequest.Code, fmt.Sprintf("unknown coordinator type %d", req.CoordinatorType)
		if req.CoordinatorType == 1 || req.CoordinatorType == 2 {
			code, msg = kerr.CoordinatorNotAvailable.Code, fmt.Sprintf("no coordinator of key type %d on this node", req.CoordinatorType)
		}
		if req.Version >= 4 {
			for _, key := range req.CoordinatorKeys {
				co := kmsg.NewFindCoordinatorResponseCoordinator()
				co.Key, co.NodeID, co.Port, co.ErrorCode, co.ErrorMessage = key, -1, -1, code, &msg
				resp.Coordinators = append(resp.Coordinators, co)
			}
			return resp
		}
		resp.NodeID, resp.Port, resp.ErrorCode, resp.ErrorMessage = -1, -1, code, &msg
		return resp
	}
	return AnswerFindCoordinator(req, OffsetsTopic, c.cluster.Brokers(), func(key string) (int32, int32, error) {
		if key == "" && req.Version >= 4 {
			return 0, -1, errors.New("empty group id")
		}
		p := c.partitionFor(key)
		leader := int32(-1)
		if h := c.handle(p); h != nil {
			leader, _ = h.Leader()
		}
		return p, leader, nil
	})
}

// armSession (re)starts a member's session timer: a member not heard from
// within its session timeout is removed. It does not run while the member
// waits in JoinGroup (the rebalance timeout bounds that).
func (c *Coordinator) armSession(g *group, m *member) {
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	m.sessionSeq++
	seq := m.sessionSeq
	m.sessionTimer = time.AfterFunc(m.sessionTimeout, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.groups[g.id] != g || g.members[m.id] != m || m.sessionSeq != seq || m.joinCh != nil || !c.leadsLocked(g) {
			return
		}
		c.logger.Info("member session expired", zap.String("group", g.id), zap.String("member", m.id), zap.Int32("generation", g.generation))
		c.removeMemberLocked(g, m)
	})
}

// addMemberLocked adds a new member and records its static id.
func (c *Coordinator) addMemberLocked(g *group, m *member) {
	g.joinSeq++
	m.joinSeq = g.joinSeq
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.delaying {
		g.newMemberAdded = true
	}
	if len(g.members) == 1 {
		g.protocolType = m.protocolType
	}
}

// removeMemberLocked removes a member (left, expired, or did not rejoin)
// and moves the group on.
func (c *Coordinator) removeMemberLocked(g *group, m *member) {
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	answerJoin(m, errJoin(kerr.UnknownMemberID.Code, m.id))
	answerSync(m, kerr.UnknownMemberID.Code, nil)
	if g.leader == m.id {
		g.leader = ""
	}
	switch g.state {
	case stateStable, stateCompletingRebalance:
		c.prepareRebalanceLocked(g, "member "+m.id+" left")
	case statePreparingRebalance:
		c.tryCompleteJoinLocked(g)
	}
}

// prepareRebalanceLocked starts a join phase: members must join again
// within the rebalance timeout; a group that was empty first waits the
// initial rebalance delay for others starting at the same time.
func (c *Coordinator) prepareRebalanceLocked(g *group, reason string) {
	if g.state == stateCompletingRebalance {
		// Members waiting for the old generation's assignment must join
		// again.
		for _, m := range g.members {
			answerSync(m, kerr.RebalanceInProgress.Code, nil)
		}
	}
	wasEmpty := g.state == stateEmpty
	g.state = statePreparingRebalance
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	c.logger.Info("group rebalancing", zap.String("group", g.id), zap.Int32("generation", g.generation), zap.String("reason", reason))
	generation := g.generation
	fire := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.groups[g.id] != g || g.state != statePreparingRebalance || g.generation != generation || !c.leadsLocked(g) {
			return
		}
		g.delaying = false
		c.completeJoinLocked(g)
	}
	if wasEmpty && c.cfg.InitialRebalanceDelay > 0 {
		// Kafka's InitialDelayedJoin: while members keep joining, wait
		// another delay, up to the rebalance timeout in all.
		delay := c.cfg.InitialRebalanceDelay
		g.delaying = true
		g.newMemberAdded = false
		g.initialRemaining = max(g.maxRebalanceTimeout()-delay, 0)
		var delayed func()
		delayed = func() {
			c.mu.Lock()
			if !c.closed && c.groups[g.id] == g && g.state == statePreparingRebalance && g.generation == generation &&
				g.newMemberAdded && g.initialRemaining > 0 {
				g.newMemberAdded = false
				next := min(delay, g.initialRemaining)
				g.initialRemaining = max(g.initialRemaining-delay, 0)
				g.rebalanceTimer = time.AfterFunc(next, delayed)
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			fire()
		}
		g.rebalanceTimer = time.AfterFunc(delay, delayed)
		return
	}
	g.delaying = false
	g.rebalanceTimer = time.AfterFunc(g.maxRebalanceTimeout(), fire)
	c.tryCompleteJoinLocked(g)
}

// tryCompleteJoinLocked ends the join phase early when everyone expected
// has joined.
func (c *Coordinator) tryCompleteJoinLocked(g *group) {
	if g.state == statePreparingRebalance && !g.delaying && g.allJoined() {
		c.completeJoinLocked(g)
	}
}

// completeJoinLocked ends the join phase: members that did not join are
// removed, a new generation starts with a chosen protocol and leader, and
// every joined member gets its JoinGroup answer.
func (c *Coordinator) completeJoinLocked(g *group) {
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			delete(g.members, m.id)
			if m.instanceID != nil && g.static[*m.instanceID] == m.id {
				delete(g.static, *m.instanceID)
			}
			if m.sessionTimer != nil {
				m.sessionTimer.Stop()
			}
			answerSync(m, kerr.UnknownMemberID.Code, nil)
			c.logger.Info("member removed: did not rejoin in time", zap.String("group", g.id), zap.String("member", m.id))
		}
	}
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	g.generation++
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = stateEmpty, "", ""
		g.emptySince = time.Now()
		c.logger.Info("group empty", zap.String("group", g.id), zap.Int32("generation", g.generation))
		c.persistGroupAsync(g)
		return
	}
	g.protocol = g.vote()
	if _, ok := g.members[g.leader]; !ok {
		var first *member
		for _, m := range g.members {
			if first == nil || m.joinSeq < first.joinSeq {
				first = m
			}
		}
		g.leader = first.id
	}
	g.state = stateCompletingRebalance
	for _, m := range g.members {
		answerJoin(m, c.joinResponse(g, m))
		c.armSession(g, m)
	}
	c.logger.Info("group joined", zap.String("group", g.id), zap.Int32("generation", g.generation), zap.String("protocol", g.protocol), zap.Int("members", len(g.members)))
}

// joinResponse is the answer of a member of the current generation; the
// leader gets every member's metadata.
func (c *Coordinator) joinResponse(g *group, m *member) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.Generation = g.generation
	protocolType, protocol := g.protocolType, g.protocol
	r.ProtocolType, r.Protocol = &protocolType, &protocol
	r.LeaderID, r.MemberID = g.leader, m.id
	if m.id == g.leader {
		for _, o := range g.members {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID, jm.InstanceID, jm.ProtocolMetadata = o.id, o.instanceID, o.metadataFor(g.protocol)
			r.Members = append(r.Members, jm)
		}
	}
	return r
}

func errJoin(code int16, memberID string) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.ErrorCode, r.Generation, r.MemberID = code, -1, memberID
	return r
}

// answerJoin hands a waiting member its JoinGroup answer.
func answerJoin(m *member, r *kmsg.JoinGroupResponse) {
	if m.joinCh != nil {
		m.joinCh <- r
		m.joinCh = nil
	}
}

// answerSync hands a waiting member its SyncGroup answer.
func answerSync(m *member, code int16, assignment []byte) {
	if m.syncCh != nil {
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode, r.MemberAssignment = code, assignment
		m.syncCh <- r
		m.syncCh = nil
	}
}
