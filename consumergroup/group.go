package consumergroup

import (
	"bytes"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// groupState is a classic group's state (Kafka's GroupState).
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

// String returns the state's name as DescribeGroups and ListGroups show it.
func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// consumerProtocolType is the protocol type of Kafka consumers, the only
// one whose subscriptions the coordinator parses.
const consumerProtocolType = "consumer"

// joinResult is what a member blocked in JoinGroup receives.
type joinResult struct {
	errorCode    int16
	memberID     string
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      []kmsg.JoinGroupResponseMember
}

// syncResult is what a member blocked in SyncGroup receives.
type syncResult struct {
	errorCode    int16
	assignment   []byte
	protocolType string
	protocol     string
}

// member is one member of a group. Guarded by its group's mu.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte
	// joinOrder orders members by first join: leader election and the
	// leader's member list follow it.
	joinOrder uint64

	// join is non-nil while the member awaits a JoinGroup response
	// (buffered, one send); sync likewise for SyncGroup.
	join chan joinResult
	sync chan syncResult

	heartbeat    *time.Timer
	heartbeatSeq uint64
}

// metadataFor returns the member's metadata for protocol name.
func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// supports reports whether the member lists protocol name.
func (m *member) supports(name string) bool {
	return slices.ContainsFunc(m.protocols, func(p kmsg.JoinGroupRequestProtocol) bool { return p.Name == name })
}

// matches reports whether protocols equal the member's, names, order and
// metadata (Kafka's MemberMetadata.matches).
func (m *member) matches(protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(protocols) != len(m.protocols) {
		return false
	}
	for i := range protocols {
		if protocols[i].Name != m.protocols[i].Name || !bytes.Equal(protocols[i].Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// topicPartition names one partition of a topic.
type topicPartition struct {
	topic     string
	partition int32
}

// offsetEntry is one committed offset. logOffset is the offset of its
// record in __consumer_offsets: of two writes for the same partition the
// later record wins, whatever order their commits complete in.
type offsetEntry struct {
	offset          int64
	leaderEpoch     int32
	metadata        string
	commitTimestamp int64
	logOffset       int64
}

// group is one classic consumer group: membership state machine and
// committed offsets. Every field is guarded by mu, except the immutable
// c, id and partition.
type group struct {
	c         *Coordinator
	id        string
	partition int32

	mu sync.Mutex

	state          groupState
	stateTimestamp time.Time
	generation     int32
	protocolType   string
	protocol       string
	leader         string
	members        map[string]*member
	joinCounter    uint64
	// pending are member ids handed out with MEMBER_ID_REQUIRED whose
	// owners have not rejoined yet, each with its session timer.
	pending map[string]*time.Timer
	// static maps group.instance.id to the member id holding it.
	static map[string]string
	// pendingSync are the members of the current generation that have not
	// sent SyncGroup yet (Kafka 3.2's pending sync).
	pendingSync map[string]struct{}

	// rebalanceTimer is the one group timer: the (initial) delayed join in
	// PreparingRebalance, the pending sync deadline after a join
	// completed. rebalanceSeq invalidates timers that fired late.
	rebalanceTimer *time.Timer
	rebalanceSeq   uint64
	// initialDelay is set while an empty group's first join is delayed;
	// initialRemaining is how much longer it may be extended and
	// newMemberAdded whether a member joined during the current delay.
	initialDelay     bool
	initialRemaining time.Duration
	newMemberAdded   bool

	// subscribed is the union of the topics the members of the current
	// generation subscribe to, nil when unknown (not a consumer group or
	// an unparsable subscription).
	subscribed map[string]struct{}

	offsets map[topicPartition]offsetEntry
	// tombstones remembers, while writes are in flight (inflight > 0),
	// the log offsets of deletions, so that an older commit completing
	// later does not bring an offset back.
	tombstones map[topicPartition]int64
	inflight   int
	// pendingCommits counts, per partition, commits appended but not yet
	// applied: deleting the group must write tombstones for them too.
	pendingCommits map[topicPartition]int
	// hasMetadata reports a group metadata record in the log not yet
	// deleted by a tombstone: DeleteGroups and expiry write one.
	hasMetadata bool
}

func newGroup(c *Coordinator, id string) *group {
	return &group{
		c:              c,
		id:             id,
		partition:      c.partitionFor(id),
		state:          stateEmpty,
		stateTimestamp: time.Now(),
		members:        make(map[string]*member),
		pending:        make(map[string]*time.Timer),
		static:         make(map[string]string),
		offsets:        make(map[topicPartition]offsetEntry),
		tombstones:     make(map[topicPartition]int64),
		pendingCommits: make(map[topicPartition]int),
	}
}

func (g *group) logger() *zap.Logger {
	return g.c.logger.With(zap.String("group", g.id))
}

func (g *group) transition(s groupState) {
	g.state = s
	g.stateTimestamp = time.Now()
}

// sortedMembers returns the members in join order.
func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].joinOrder < ms[j].joinOrder })
	return ms
}

// after runs fn with g.mu held after d, unless the coordinator closed or
// the group died meanwhile.
func (g *group) after(d time.Duration, fn func()) *time.Timer {
	return g.c.afterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.state == stateDead {
			return
		}
		fn()
	})
}

// setRebalanceTimer replaces the group timer with one firing fn after d.
func (g *group) setRebalanceTimer(d time.Duration, fn func()) {
	g.stopRebalanceTimer()
	seq := g.rebalanceSeq
	g.rebalanceTimer = g.after(d, func() {
		if g.rebalanceSeq != seq {
			return
		}
		g.rebalanceTimer = nil
		fn()
	})
}

func (g *group) stopRebalanceTimer() {
	g.rebalanceSeq++
	if g.rebalanceTimer != nil {
		g.rebalanceTimer.Stop()
		g.rebalanceTimer = nil
	}
}

// rebalanceTimeout is the largest rebalance timeout of the members.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// scheduleHeartbeat restarts m's session timer. A member blocked in
// JoinGroup or SyncGroup is kept alive (Kafka's shouldKeepAlive): its
// timer is restarted instead of expiring it.
func (g *group) scheduleHeartbeat(m *member) {
	if m.heartbeat != nil {
		m.heartbeat.Stop()
	}
	m.heartbeatSeq++
	seq := m.heartbeatSeq
	m.heartbeat = g.after(m.sessionTimeout, func() {
		if g.members[m.id] != m || m.heartbeatSeq != seq {
			return
		}
		if m.join != nil || m.sync != nil {
			g.scheduleHeartbeat(m)
			return
		}
		g.logger().Info("member session expired", zap.String("member", m.id), zap.Int32("generation", g.generation), zap.Duration("session-timeout", m.sessionTimeout))
		g.removeMember(m, "member session expired")
	})
}

func (g *group) stopHeartbeat(m *member) {
	m.heartbeatSeq++
	if m.heartbeat != nil {
		m.heartbeat.Stop()
		m.heartbeat = nil
	}
}

// addPending registers a member id handed out with MEMBER_ID_REQUIRED; it
// is forgotten if its owner does not rejoin within sessionTimeout.
func (g *group) addPending(id string, sessionTimeout time.Duration) {
	g.pending[id] = g.after(sessionTimeout, func() {
		if _, ok := g.pending[id]; !ok {
			return
		}
		g.logger().Debug("pending member expired", zap.String("member", id))
		g.removePending(id)
		g.maybeDrop()
	})
}

func (g *group) removePending(id string) {
	t, ok := g.pending[id]
	if !ok {
		return
	}
	t.Stop()
	delete(g.pending, id)
	if g.state == statePreparingRebalance {
		g.tryCompleteJoin()
	}
}

// supportsProtocols reports whether a member with these protocols may
// join (Kafka's GroupMetadata.supportsProtocols).
func (g *group) supportsProtocols(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	if g.state == stateEmpty {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		n := 0
		for _, m := range g.members {
			if m.supports(p.Name) {
				n++
			}
		}
		if n == len(g.members) {
			return true
		}
	}
	return false
}

// selectProtocol returns the protocol every member supports that most
// members prefer (Kafka's vote); ties go to the earlier one in the
// preference list of the first member. "" when there is none.
func (g *group) selectProtocol() string {
	ms := g.sortedMembers()
	if len(ms) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range ms[0].protocols {
		all := true
		for _, m := range ms[1:] {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all && !slices.Contains(candidates, p.Name) {
			candidates = append(candidates, p.Name)
		}
	}
	if len(candidates) == 0 {
		return ""
	}
	votes := make(map[string]int, len(candidates))
	for _, m := range ms {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := candidates[0]
	for _, c := range candidates[1:] {
		if votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// subscriptionOf parses a consumer protocol subscription's topics; nil
// when the group is not a consumer group or the bytes do not parse.
func subscriptionOf(protocolType string, metadata []byte) map[string]struct{} {
	if protocolType != consumerProtocolType {
		return nil
	}
	var md kmsg.ConsumerMemberMetadata
	if err := md.ReadFrom(metadata); err != nil {
		return nil
	}
	topics := make(map[string]struct{}, len(md.Topics))
	for _, t := range md.Topics {
		topics[t] = struct{}{}
	}
	return topics
}

// computeSubscribed sets subscribed from the members' metadata for the
// selected protocol (Kafka's computeSubscribedTopics).
func (g *group) computeSubscribed() {
	g.subscribed = nil
	if g.protocolType != consumerProtocolType || g.protocol == "" {
		return
	}
	all := make(map[string]struct{})
	for _, m := range g.members {
		topics := subscriptionOf(g.protocolType, m.metadataFor(g.protocol))
		if topics == nil {
			return
		}
		for t := range topics {
			all[t] = struct{}{}
		}
	}
	g.subscribed = all
}

// isSubscribedTo reports whether a member of the current generation may
// consume topic: true when the subscriptions are unknown (as Kafka).
func (g *group) isSubscribedTo(topic string) bool {
	if g.subscribed == nil {
		return true
	}
	_, ok := g.subscribed[topic]
	return ok
}

// addMember adds m (awaiting join) and rebalances as Kafka's
// addMemberAndRebalance.
func (g *group) addMember(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.joinCounter++
	m.joinOrder = g.joinCounter
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.maybePrepareRebalance("adding new member " + m.id)
	if g.state == statePreparingRebalance {
		g.tryCompleteJoin()
	}
}

// updateMember replaces m's protocols and timeouts from a rejoin and
// makes it await the join (Kafka's updateMemberAndRebalance).
func (g *group) updateMember(m *member, req *kmsg.JoinGroupRequest, join chan joinResult) {
	m.protocols = req.Protocols
	m.protocolType = req.ProtocolType
	m.sessionTimeout = time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	m.rebalanceTimeout = rebalanceTimeoutOf(req)
	g.awaitJoin(m, join)
	g.maybePrepareRebalance("updating metadata for member " + m.id)
	if g.state == statePreparingRebalance {
		g.tryCompleteJoin()
	}
}

// awaitJoin makes join m's pending JoinGroup. A previous one still
// registered (a retry whose first attempt was abandoned) is told to
// rejoin.
func (g *group) awaitJoin(m *member, join chan joinResult) {
	if m.join != nil {
		m.join <- joinResult{errorCode: kerr.RebalanceInProgress.Code, memberID: m.id, generation: -1}
	}
	m.join = join
}

// maybePrepareRebalance starts a rebalance unless one is under way.
func (g *group) maybePrepareRebalance(reason string) {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		g.prepareRebalance(reason)
	}
}

// prepareRebalance moves the group to PreparingRebalance: members must
// rejoin within the rebalance timeout; an empty group waits
// InitialRebalanceDelay first (Kafka's InitialDelayedJoin).
func (g *group) prepareRebalance(reason string) {
	if g.state == stateCompletingRebalance {
		g.failSyncs(kerr.RebalanceInProgress.Code)
	}
	g.pendingSync = nil
	timeout := g.rebalanceTimeout()
	if g.state == stateEmpty {
		delay := g.c.cfg.InitialRebalanceDelay
		g.initialDelay = true
		g.newMemberAdded = false
		g.initialRemaining = max(timeout-delay, 0)
		g.setRebalanceTimer(delay, g.onInitialDelay)
	} else {
		g.initialDelay = false
		g.setRebalanceTimer(timeout, g.completeJoin)
	}
	previous := g.state
	g.transition(statePreparingRebalance)
	g.logger().Info("preparing to rebalance group",
		zap.String("reason", reason),
		zap.Stringer("previous-state", previous),
		zap.Int32("generation", g.generation),
		zap.Int("members", len(g.members)),
		zap.Duration("rebalance-timeout", timeout))
}

// onInitialDelay ends one initial delay: extended while members keep
// joining, up to the rebalance timeout.
func (g *group) onInitialDelay() {
	if g.state != statePreparingRebalance {
		return
	}
	if g.newMemberAdded && g.initialRemaining > 0 {
		g.newMemberAdded = false
		delay := min(g.c.cfg.InitialRebalanceDelay, g.initialRemaining)
		g.initialRemaining = max(g.initialRemaining-g.c.cfg.InitialRebalanceDelay, 0)
		g.setRebalanceTimer(delay, g.onInitialDelay)
		return
	}
	g.completeJoin()
}

// tryCompleteJoin completes the join phase once every member has rejoined
// and no pending member is outstanding, except during the initial delay,
// which always runs out.
func (g *group) tryCompleteJoin() {
	if g.state != statePreparingRebalance || g.initialDelay {
		return
	}
	if len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	g.completeJoin()
}

// completeJoin ends PreparingRebalance: members that did not rejoin are
// removed, a new generation starts and every joined member gets its
// JoinGroup response (Kafka's onCompleteJoin).
func (g *group) completeJoin() {
	if g.state != statePreparingRebalance {
		return
	}
	g.stopRebalanceTimer()
	g.initialDelay = false
	for _, m := range g.sortedMembers() {
		if m.join == nil {
			g.logger().Info("removing member that did not rejoin", zap.String("member", m.id), zap.Int32("generation", g.generation))
			g.detach(m, kerr.UnknownMemberID.Code)
		}
	}
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.subscribed = nil
		g.transition(stateEmpty)
		g.logger().Info("group is empty", zap.Int32("generation", g.generation))
		// As Kafka, persist the empty generation; nobody waits for it.
		if _, _, err := g.appendRecords([]record{g.metadataRecord(nil)}); err != nil {
			g.logger().Warn("store empty group metadata", zap.Error(err))
		}
		return
	}
	g.protocol = g.selectProtocol()
	g.computeSubscribed()
	g.transition(stateCompletingRebalance)
	ms := g.sortedMembers()
	leaderMembers := make([]kmsg.JoinGroupResponseMember, 0, len(ms))
	for _, m := range ms {
		leaderMembers = append(leaderMembers, kmsg.JoinGroupResponseMember{
			MemberID:         m.id,
			InstanceID:       m.instanceID,
			ProtocolMetadata: m.metadataFor(g.protocol),
		})
	}
	g.pendingSync = make(map[string]struct{}, len(ms))
	for _, m := range ms {
		res := g.currentJoinResult(m.id)
		if m.id == g.leader {
			res.members = leaderMembers
		}
		m.join <- res
		m.join = nil
		g.pendingSync[m.id] = struct{}{}
		g.scheduleHeartbeat(m)
	}
	g.setRebalanceTimer(g.rebalanceTimeout(), g.onPendingSyncExpired)
	g.logger().Info("group joined, awaiting assignment",
		zap.Int32("generation", g.generation),
		zap.String("protocol", g.protocol),
		zap.String("leader", g.leader),
		zap.Int("members", len(g.members)))
}

// currentJoinResult is a successful join response for memberID in the
// current generation, without the member list.
func (g *group) currentJoinResult(memberID string) joinResult {
	return joinResult{
		memberID:     memberID,
		generation:   g.generation,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		leader:       g.leader,
	}
}

// leaderMembers is the member list the leader gets.
func (g *group) leaderMembers() []kmsg.JoinGroupResponseMember {
	ms := g.sortedMembers()
	out := make([]kmsg.JoinGroupResponseMember, 0, len(ms))
	for _, m := range ms {
		out = append(out, kmsg.JoinGroupResponseMember{MemberID: m.id, InstanceID: m.instanceID, ProtocolMetadata: m.metadataFor(g.protocol)})
	}
	return out
}

// onPendingSyncExpired removes the members of the generation that never
// sent SyncGroup within the rebalance timeout, so a member lost between
// join and sync cannot stall the group.
func (g *group) onPendingSyncExpired() {
	if g.state != stateCompletingRebalance && g.state != stateStable {
		return
	}
	if len(g.pendingSync) == 0 {
		return
	}
	ids := make([]string, 0, len(g.pendingSync))
	for id := range g.pendingSync {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	g.pendingSync = nil
	for _, id := range ids {
		if m, ok := g.members[id]; ok {
			g.logger().Info("removing member that did not sync", zap.String("member", id), zap.Int32("generation", g.generation))
			g.detach(m, kerr.UnknownMemberID.Code)
		}
	}
	g.afterRemoval("members failed to sync")
}

// failSyncs answers every member blocked in SyncGroup with code.
func (g *group) failSyncs(code int16) {
	for _, m := range g.members {
		if m.sync != nil {
			m.sync <- syncResult{errorCode: code}
			m.sync = nil
		}
	}
}

// detach takes m out of the group, answering its blocked calls with
// code, without rebalancing.
func (g *group) detach(m *member, code int16) {
	g.stopHeartbeat(m)
	if m.join != nil {
		m.join <- joinResult{errorCode: code, memberID: m.id, generation: -1}
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- syncResult{errorCode: code}
		m.sync = nil
	}
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			// Prefer a member that already rejoined.
			g.leader = ms[0].id
			for _, o := range ms {
				if o.join != nil {
					g.leader = o.id
					break
				}
			}
		}
	}
}

// removeMember removes m and rebalances (Kafka's removeMemberAndUpdateGroup).
func (g *group) removeMember(m *member, reason string) {
	g.detach(m, kerr.UnknownMemberID.Code)
	g.afterRemoval(reason)
}

func (g *group) afterRemoval(reason string) {
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance(reason)
	case statePreparingRebalance:
		g.tryCompleteJoin()
	}
}

// validateMember checks a request's member id and instance id (Kafka's
// GroupMetadata.validateMember): FENCED_INSTANCE_ID when the instance is
// held by another member id, UNKNOWN_MEMBER_ID when unknown.
func (g *group) validateMember(memberID string, instanceID *string) *kerr.Error {
	if instanceID != nil {
		current, ok := g.static[*instanceID]
		if !ok {
			return kerr.UnknownMemberID
		}
		if current != memberID {
			return kerr.FencedInstanceID
		}
		return nil
	}
	if _, ok := g.members[memberID]; !ok {
		return kerr.UnknownMemberID
	}
	return nil
}

// stopTimers stops every timer of the group (Close, deletion).
func (g *group) stopTimers() {
	g.stopRebalanceTimer()
	for _, m := range g.members {
		g.stopHeartbeat(m)
	}
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
}

// isEmptyAndUnused reports a group that holds nothing worth keeping: no
// members, no pending members, no offsets, no metadata in the log.
func (g *group) isEmptyAndUnused() bool {
	return g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 && g.inflight == 0 && !g.hasMetadata
}
