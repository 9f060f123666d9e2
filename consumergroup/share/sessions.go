package share

import (
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
)

// SessionKey names a share session: one per member of a share group on
// this node.
type SessionKey struct {
	Group, Member string
}

// TopicPartition names a partition by topic id, as share requests do.
type TopicPartition struct {
	TopicID   [16]byte
	Partition int32
}

// session is one share session: the partitions a member fetches from
// this node, and the epoch its next request must carry.
type session struct {
	next       int32
	partitions []TopicPartition
	// owner is what opened the session (wire: its connection), for
	// CloseOwned.
	owner any
}

// Sessions are the share sessions of a node (KIP-932): a ShareFetch with
// epoch 0 opens one (replacing the member's previous one), -1 closes it,
// and any other epoch must be the one after the last request's. Safe for
// concurrent use.
type Sessions struct {
	max int

	// mu guards sessions.
	mu       sync.Mutex
	sessions map[SessionKey]*session
}

// NewSessions returns an empty set of at most max sessions.
func NewSessions(max int) *Sessions {
	return &Sessions{max: max, sessions: make(map[SessionKey]*session)}
}

// Len returns the number of open sessions.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// nextEpoch is the epoch after e: epochs wrap to 1, never 0 or -1.
func nextEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// Fetch applies a ShareFetch's session part: with epoch 0 it opens the
// session for owner with add (replacing an existing one, whose partitions
// it returns in replaced so their records can be released); otherwise it
// checks the epoch, adds add and removes forget. It returns the session's
// partitions after the change, in the order they were added. Errors:
// SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH,
// SHARE_SESSION_LIMIT_REACHED. Epoch -1 is Close's.
func (s *Sessions) Fetch(key SessionKey, owner any, epoch int32, add, forget []TopicPartition) (parts, replaced []TopicPartition, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[key]
	switch {
	case epoch == 0:
		if ss == nil && len(s.sessions) >= s.max {
			return nil, nil, kerr.ShareSessionLimitReached
		}
		if ss != nil {
			replaced = ss.partitions
		}
		ss = &session{owner: owner}
		s.sessions[key] = ss
	case epoch < 0:
		return nil, nil, kerr.InvalidShareSessionEpoch
	case ss == nil:
		return nil, nil, kerr.ShareSessionNotFound
	case epoch != ss.next:
		return nil, nil, kerr.InvalidShareSessionEpoch
	}
	ss.next = nextEpoch(epoch)
	for _, tp := range add {
		if !containsTP(ss.partitions, tp) {
			ss.partitions = append(ss.partitions, tp)
		}
	}
	if len(forget) > 0 {
		kept := ss.partitions[:0:0]
		for _, tp := range ss.partitions {
			if !containsTP(forget, tp) {
				kept = append(kept, tp)
			}
		}
		ss.partitions = kept
	}
	return append([]TopicPartition(nil), ss.partitions...), replaced, nil
}

// Acknowledge checks a ShareAcknowledge's epoch against the session and
// moves it on. Epoch 0 is INVALID_SHARE_SESSION_EPOCH (acknowledgements
// need an open session); -1 is Close's.
func (s *Sessions) Acknowledge(key SessionKey, epoch int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[key]
	switch {
	case epoch <= 0:
		return kerr.InvalidShareSessionEpoch
	case ss == nil:
		return kerr.ShareSessionNotFound
	case epoch != ss.next:
		return kerr.InvalidShareSessionEpoch
	}
	ss.next = nextEpoch(epoch)
	return nil
}

// Close closes key's session and returns its partitions, whose records
// the member holds are to be released. SHARE_SESSION_NOT_FOUND when there
// is none.
func (s *Sessions) Close(key SessionKey) ([]TopicPartition, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[key]
	if ss == nil {
		return nil, kerr.ShareSessionNotFound
	}
	delete(s.sessions, key)
	return ss.partitions, nil
}

// CloseOwned closes key's session if owner opened it (its connection
// closed) and returns its partitions; false when there is no such
// session (closed, or opened again by another owner).
func (s *Sessions) CloseOwned(key SessionKey, owner any) ([]TopicPartition, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[key]
	if ss == nil || ss.owner != owner {
		return nil, false
	}
	delete(s.sessions, key)
	return ss.partitions, true
}

// Contains reports whether key's session holds tp.
func (s *Sessions) Contains(key SessionKey, tp TopicPartition) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[key]
	return ss != nil && containsTP(ss.partitions, tp)
}

func containsTP(list []TopicPartition, tp TopicPartition) bool {
	for _, x := range list {
		if x == tp {
			return true
		}
	}
	return false
}
