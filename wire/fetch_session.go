package wire

// Fetch sessions (KIP-227). A consumer that opens a session sends, after
// one full request, only the partitions whose fetch position changed; the
// broker remembers the rest and answers only partitions with something new
// (records, a changed high watermark, last stable or log start offset, or an
// error). This keeps requests and responses small for consumers of many
// partitions.
//
// The session epoch says where a request stands:
//
//	epoch -1  no session: a full request; close SessionID if given
//	epoch  0  open a session: a full request; close SessionID if given;
//	          the response carries the new session's id (0: none, the
//	          cache is full or disabled, and the client fetches sessionless)
//	epoch  n  incremental request to SessionID, which must expect epoch n
//	          (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH);
//	          after it the session expects n+1 (wrapping to 1)
//
// Sessions live in the server, not a connection, as in Kafka; the least
// recently used one is evicted when the cache is full.

import (
	"container/list"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
)

// fetchSessions is the server's session cache.
type fetchSessions struct {
	max int

	mu       sync.Mutex
	sessions map[int32]*fetchSession
	// lru orders sessions by last use, most recent at the front; values
	// are *fetchSession.
	lru *list.List
}

// fetchSession is one client's session: the partitions it fetches and
// what the last response said about each. Its fields are used only under
// the cache's lock by the one request that matched its epoch.
type fetchSession struct {
	id    int32
	epoch int32 // the epoch the next request must carry
	elem  *list.Element
	// partitions in the order they were added, as Kafka keeps them.
	partitions []*sessionPartition
	index      map[sessionKey]*sessionPartition
}

// sessionKey names a partition as the request does: by topic name before
// Fetch v13, by topic id after.
type sessionKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// sessionPartition is a partition's fetch parameters and what was last
// sent for it.
type sessionPartition struct {
	key                sessionKey
	fetchOffset        int64
	maxBytes           int32
	currentLeaderEpoch int32
	// last sent values; -1 (never sent) forces the next response to
	// include the partition.
	sentHighWatermark, sentLastStable, sentLogStart int64
}

func newFetchSessions(max int) *fetchSessions {
	return &fetchSessions{max: max, sessions: make(map[int32]*fetchSession), lru: list.New()}
}

// fetchTarget is one partition a fetch reads: its parameters, and the
// session entry to update when the response is final (nil without a
// session).
type fetchTarget struct {
	key                sessionKey
	fetchOffset        int64
	maxBytes           int32
	currentLeaderEpoch int32
	session            *sessionPartition
}

// sessionRequest is what a fetch says about its session and partitions.
type sessionRequest struct {
	id, epoch int32
	// full lists the request's partitions; for an incremental request they
	// are additions or updates.
	full      []fetchTarget
	forgotten []sessionKey
}

// sessionResult is the partitions to read and how to answer.
type sessionResult struct {
	targets []fetchTarget
	// incremental answers only changed partitions.
	incremental bool
	// responseID is the SessionID of the response.
	responseID int32
	// err is a session error for the top-level error code.
	err *kerr.Error
}

// resolve applies a request to the cache and returns what to read.
func (fs *fetchSessions) resolve(r sessionRequest) sessionResult {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	switch {
	case r.epoch == -1:
		fs.removeLocked(r.id)
		return sessionResult{targets: r.full}
	case r.epoch == 0:
		fs.removeLocked(r.id)
		sess := fs.createLocked()
		if sess == nil {
			return sessionResult{targets: r.full}
		}
		for i := range r.full {
			r.full[i].session = sess.upsert(r.full[i])
		}
		return sessionResult{targets: r.full, responseID: sess.id}
	case r.epoch < 0:
		return sessionResult{err: kerr.InvalidFetchSessionEpoch}
	}
	sess, ok := fs.sessions[r.id]
	if !ok {
		return sessionResult{err: kerr.FetchSessionIDNotFound}
	}
	if sess.epoch != r.epoch {
		return sessionResult{err: kerr.InvalidFetchSessionEpoch}
	}
	sess.epoch = nextSessionEpoch(sess.epoch)
	fs.lru.MoveToFront(sess.elem)
	for _, t := range r.full {
		sess.upsert(t)
	}
	for _, k := range r.forgotten {
		sess.forget(k)
	}
	targets := make([]fetchTarget, 0, len(sess.partitions))
	for _, sp := range sess.partitions {
		targets = append(targets, fetchTarget{
			key: sp.key, fetchOffset: sp.fetchOffset, maxBytes: sp.maxBytes,
			currentLeaderEpoch: sp.currentLeaderEpoch, session: sp,
		})
	}
	return sessionResult{targets: targets, incremental: true, responseID: sess.id}
}

// createLocked makes a new session, evicting the least recently used one
// when the cache is full; nil when sessions are disabled.
func (fs *fetchSessions) createLocked() *fetchSession {
	if fs.max <= 0 {
		return nil
	}
	if len(fs.sessions) >= fs.max {
		oldest := fs.lru.Back().Value.(*fetchSession)
		fs.removeLocked(oldest.id)
	}
	id := int32(0)
	for id == 0 || fs.sessions[id] != nil {
		id = rand.Int32N(math.MaxInt32) + 1
	}
	sess := &fetchSession{id: id, epoch: 1, index: make(map[sessionKey]*sessionPartition)}
	sess.elem = fs.lru.PushFront(sess)
	fs.sessions[id] = sess
	return sess
}

func (fs *fetchSessions) removeLocked(id int32) {
	if sess, ok := fs.sessions[id]; ok {
		fs.lru.Remove(sess.elem)
		delete(fs.sessions, id)
	}
}

// commit records what a final response told the client about a partition.
func (fs *fetchSessions) commit(sp *sessionPartition, highWatermark, lastStable, logStart int64) {
	fs.mu.Lock()
	sp.sentHighWatermark, sp.sentLastStable, sp.sentLogStart = highWatermark, lastStable, logStart
	fs.mu.Unlock()
}

// changed reports whether a partition has news compared with what was last
// sent.
func (fs *fetchSessions) changed(sp *sessionPartition, highWatermark, lastStable, logStart int64) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return sp.sentHighWatermark != highWatermark || sp.sentLastStable != lastStable || sp.sentLogStart != logStart
}

func (sess *fetchSession) upsert(t fetchTarget) *sessionPartition {
	sp, ok := sess.index[t.key]
	if !ok {
		sp = &sessionPartition{key: t.key, sentHighWatermark: -1, sentLastStable: -1, sentLogStart: -1}
		sess.index[t.key] = sp
		sess.partitions = append(sess.partitions, sp)
	}
	sp.fetchOffset, sp.maxBytes, sp.currentLeaderEpoch = t.fetchOffset, t.maxBytes, t.currentLeaderEpoch
	return sp
}

func (sess *fetchSession) forget(k sessionKey) {
	if _, ok := sess.index[k]; !ok {
		return
	}
	delete(sess.index, k)
	for i, sp := range sess.partitions {
		if sp.key == k {
			sess.partitions = append(sess.partitions[:i], sess.partitions[i+1:]...)
			break
		}
	}
}

// nextSessionEpoch increments an epoch, wrapping past MaxInt32 to 1.
func nextSessionEpoch(epoch int32) int32 {
	if epoch == math.MaxInt32 {
		return 1
	}
	return epoch + 1
}
