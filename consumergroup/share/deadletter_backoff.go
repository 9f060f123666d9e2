package share

import (
	"time"

	"github.com/sluice-io/sluice/consumergroup/sharestate"
)

// Dead-letter backoff. A dead-letter write that fails (for another reason
// than a topic that does not exist) drops the share-partition, whose next
// use reloads the stored state: the records are available again. Handed
// straight back out, rejected again, failing again, they would go round in
// a tight loop for as long as the dead-letter partition is unavailable.
// So the Manager remembers, per share-partition, the offsets whose dead
// letters failed and until when to hold them; a load holds those records
// (acquired by deadLetterHolder, no member, with the delivery count they
// had, not counting a delivery) until then, and their lock expiry
// releases them, storing that count (or, at the delivery limit,
// dead-letters them again): a record whose dead letter keeps failing
// still reaches the delivery limit. The hold doubles with each failure in a
// row, from deadLetterBackoffMin to deadLetterBackoffMax; a dead-letter
// write of the share-partition that succeeds resets it. The backoff is
// this node's memory only: after a failover the records are as stored.

const (
	// deadLetterBackoffMin is the hold after a first failed dead-letter
	// write.
	deadLetterBackoffMin = 500 * time.Millisecond
	// deadLetterBackoffMax bounds the hold.
	deadLetterBackoffMax = 30 * time.Second
	// deadLetterHolder is the owner of records held after a failed
	// dead-letter write: no member id (clients' are base64) contains a
	// NUL, so no acknowledgement matches it.
	deadLetterHolder = "\x00dead-letter-backoff"
)

// deadLetterBackoff is the hold of one share-partition's records whose
// dead letters could not be written.
type deadLetterBackoff struct {
	refs     []deadLetterRef
	failures int
	until    time.Time
}

// backOffDeadLetters remembers that the dead letters of refs of key could
// not be written: the next load holds them for the doubled backoff.
func (m *Manager) backOffDeadLetters(key sharestate.Key, refs []deadLetterRef) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.backoffs[key]
	if b == nil {
		b = &deadLetterBackoff{}
		m.backoffs[key] = b
	}
	b.failures++
	hold := deadLetterBackoffMin
	for i := 1; i < b.failures && hold < deadLetterBackoffMax; i++ {
		hold *= 2
	}
	hold = min(hold, deadLetterBackoffMax)
	b.until = m.now().Add(hold)
	b.refs = append(b.refs[:0], refs...)
	return hold
}

// forgetDeadLetterBackoff resets key's backoff: its dead letters were
// written.
func (m *Manager) forgetDeadLetterBackoff(key sharestate.Key) {
	m.mu.Lock()
	delete(m.backoffs, key)
	m.mu.Unlock()
}

// holdBackedOffLocked holds sp's (held locked, just loaded) records whose
// dead letters failed until their backoff ends.
func (m *Manager) holdBackedOffLocked(sp *sharePartition) {
	m.mu.Lock()
	b := m.backoffs[sp.key]
	var refs []deadLetterRef
	var until time.Time
	if b != nil {
		refs, until = append(refs, b.refs...), b.until
	}
	m.mu.Unlock()
	if len(refs) == 0 || !m.now().Before(until) {
		return
	}
	sp.state.hold(refs, deadLetterHolder, until)
}
