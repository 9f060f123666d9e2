package share

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/consumergroup/sharestate"
)

// AckType is an acknowledgement type of ShareFetch and ShareAcknowledge,
// with Kafka's codes.
type AckType int8

const (
	// AckGap acknowledges offsets of an acquired range that hold no
	// record (compacted away, or a control record): they are archived.
	AckGap AckType = 0
	// AckAccept completes the record: it is never delivered again.
	AckAccept AckType = 1
	// AckRelease gives the record back: it is available again, unless
	// it reached the delivery limit.
	AckRelease AckType = 2
	// AckReject completes the record as unprocessable: it is archived,
	// dead-lettered first when the group has a dead-letter topic.
	AckReject AckType = 3
	// AckRenew extends the acquisition lock by the group's lock duration
	// (KIP-1222); the record stays acquired.
	AckRenew AckType = 4
)

// recordState is a record's state in a share-partition, with Kafka's
// codes (sharestate.RecordState for the durable ones).
type recordState int8

const (
	stateAvailable    recordState = 0
	stateAcquired     recordState = 1
	stateAcknowledged recordState = 2
	stateArchived     recordState = 4
)

// inflight is one record at or after the start offset.
type inflight struct {
	state recordState
	// deliveries counts the acquisitions of the record.
	deliveries int16
	// member holds the record while acquired; deadline is when its lock
	// expires.
	member   string
	deadline time.Time
}

// deadLetterReason says why a record is dead-lettered.
type deadLetterReason int8

const (
	reasonRejected deadLetterReason = iota
	reasonDeliveryLimit
)

// message is the __dlq.errors.message header of a dead letter: the same
// text Kafka writes.
func (r deadLetterReason) message() string {
	if r == reasonRejected {
		return "Offset rejected by client."
	}
	return "Offset delivery count exceeded the threshold."
}

// deadLetterRef names a record to dead-letter before its archiving is
// persisted.
type deadLetterRef struct {
	offset     int64
	deliveries int16
	reason     deadLetterReason
}

// span is a run of offsets First..Last (inclusive) read from the log: one
// stored batch, or offsets to skip (a control batch, an aborted
// transaction's batch under read_committed).
type span struct {
	first, last int64
	skip        bool
}

// acquiredRange is a run of offsets acquired with one delivery count.
type acquiredRange struct {
	first, last int64
	deliveries  int16
}

// limits are the group and broker settings a share-partition operation
// obeys.
type limits struct {
	lock          time.Duration
	deliveryLimit int16
	maxLocks      int
	// deadLetters is set when the group has a dead-letter topic.
	deadLetters bool
}

// changes collects what an operation did that must be persisted (changed
// offsets) and dead-lettered before it is answered.
type changes struct {
	offsets     []int64
	deadLetters []deadLetterRef
	// released is set when records became available, or the start
	// offset moved and so freed in-flight room (max record locks):
	// waiters may acquire.
	released bool
}

func (c *changes) empty() bool { return len(c.offsets) == 0 }

// partitionState is the in-memory state machine of one share-partition:
// the records from the start offset (SPSO) to the end offset (SPEO),
// exclusive. Records at or after the end were never acquired: available
// with no delivery. It does no I/O and reads no clock; not safe for
// concurrent use (the owning sharePartition's mutex guards it).
type partitionState struct {
	start   int64
	records []inflight // records[i] is offset start+i
	// acquired counts records in stateAcquired.
	acquired int
}

// end is the share-partition end offset (SPEO).
func (p *partitionState) end() int64 { return p.start + int64(len(p.records)) }

// load replaces p with a durable state: acquired records do not survive a
// load, so every stored record is available, acknowledged or archived.
func (p *partitionState) load(st sharestate.State) {
	p.start = max(st.StartOffset, 0)
	p.records = p.records[:0]
	p.acquired = 0
	for _, b := range st.Batches {
		if b.Last < p.start || b.Last < b.First {
			continue
		}
		first := max(b.First, p.start)
		for p.end() < first {
			p.records = append(p.records, inflight{})
		}
		for o := first; o <= b.Last; o++ {
			r := inflight{state: recordState(b.State), deliveries: b.DeliveryCount}
			if r.state != stateAcknowledged && r.state != stateArchived {
				r.state = stateAvailable
			}
			if o < p.end() {
				p.records[o-p.start] = r
			} else {
				p.records = append(p.records, r)
			}
		}
	}
	p.advance()
}

// at returns the record at offset o, which must be in [start, end).
func (p *partitionState) at(o int64) *inflight { return &p.records[o-p.start] }

// nextOffset is where the next acquisition reads the log from: the first
// available record, or the end.
func (p *partitionState) nextOffset() int64 {
	for i := range p.records {
		if p.records[i].state == stateAvailable {
			return p.start + int64(i)
		}
	}
	return p.end()
}

// full reports whether nothing can be acquired until the start offset
// moves or a record is released: no in-flight record is available and
// the share-partition holds maxLocks in-flight records.
func (p *partitionState) full(maxLocks int) bool {
	return len(p.records) >= maxLocks && p.nextOffset() == p.end()
}

// holds reports whether member holds an acquired record.
func (p *partitionState) holds(member string) bool {
	if p.acquired == 0 {
		return false
	}
	for i := range p.records {
		if r := &p.records[i]; r.state == stateAcquired && r.member == member {
			return true
		}
	}
	return false
}

// moveStart moves the start offset to at least offset (the log start
// moved past it: those records are gone), dropping their state.
func (p *partitionState) moveStart(offset int64) bool {
	if offset <= p.start {
		return false
	}
	n := min(offset-p.start, int64(len(p.records)))
	for i := int64(0); i < n; i++ {
		if p.records[i].state == stateAcquired {
			p.acquired--
		}
	}
	p.records = append(p.records[:0], p.records[n:]...)
	p.start = offset
	return true
}

// advance moves the start offset over the complete records at its head
// and reports whether it moved.
func (p *partitionState) advance() bool {
	n := 0
	for n < len(p.records) && (p.records[n].state == stateAcknowledged || p.records[n].state == stateArchived) {
		n++
	}
	if n == 0 {
		return false
	}
	p.records = append(p.records[:0], p.records[n:]...)
	p.start += int64(n)
	return true
}

// crossingLimit bounds the batch crossing the max record locks, which
// acquire takes whole: in flight are at most crossingLimit times
// lim.maxLocks records (16000, some 0.8 MB of state, at the default),
// whatever the records a producer packed into one batch (a compressed
// batch of tiny records may hold millions).
const crossingLimit = 8

// acquire acquires for member the available records of spans, in order,
// until maxRecords are acquired or the share-partition holds lim.maxLocks
// in-flight records; unless strict, the batch that reaches either limit
// is acquired whole (as Kafka checks its in-flight limit before a fetch,
// not within its batches) up to crossingLimit times lim.maxLocks in
// flight.
// Skipped spans and offsets missing between spans are archived. It
// returns the acquired runs and the changes to persist (records archived
// because a lowered delivery limit exhausts them).
func (p *partitionState) acquire(now time.Time, member string, spans []span, maxRecords int, strict bool, lim limits) ([]acquiredRange, changes) {
	var (
		out   []acquiredRange
		ch    changes
		count int
	)
	take := func(o int64, r *inflight) {
		r.state, r.member, r.deadline = stateAcquired, member, now.Add(lim.lock)
		r.deliveries++
		p.acquired++
		count++
		if n := len(out); n > 0 && out[n-1].last == o-1 && out[n-1].deliveries == r.deliveries {
			out[n-1].last = o
		} else {
			out = append(out, acquiredRange{first: o, last: o, deliveries: r.deliveries})
		}
	}
	for _, s := range spans {
		if count >= maxRecords {
			break
		}
		if s.last < p.start {
			continue
		}
		if s.first >= p.end() && !s.skip && len(p.records) >= lim.maxLocks {
			break
		}
		// Offsets between the end and this span hold no record.
		for p.end() < s.first {
			p.records = append(p.records, inflight{state: stateArchived})
		}
		for o := max(s.first, p.start); o <= s.last; o++ {
			if strict && count >= maxRecords {
				break
			}
			if o < p.end() {
				r := p.at(o)
				switch {
				case r.state != stateAvailable:
				case s.skip:
					r.state = stateArchived
				case r.deliveries >= lim.deliveryLimit:
					p.exhaust(o, r, reasonDeliveryLimit, lim, &ch)
				default:
					take(o, r)
				}
				continue
			}
			if s.skip {
				p.records = append(p.records, inflight{state: stateArchived})
				continue
			}
			if len(p.records) >= lim.maxLocks && (strict || len(p.records) >= crossingLimit*lim.maxLocks) {
				break
			}
			p.records = append(p.records, inflight{})
			take(o, p.at(o))
		}
	}
	p.advance()
	return out, ch
}

// exhaust archives record r at offset o, which will not be delivered
// again, dead-lettering it first when the group has a dead-letter topic.
func (p *partitionState) exhaust(o int64, r *inflight, why deadLetterReason, lim limits, ch *changes) {
	if r.state == stateAcquired {
		p.acquired--
	}
	r.state, r.member, r.deadline = stateArchived, "", time.Time{}
	ch.offsets = append(ch.offsets, o)
	if lim.deadLetters {
		ch.deadLetters = append(ch.deadLetters, deadLetterRef{offset: o, deliveries: r.deliveries, reason: why})
	}
}

// release makes acquired record r at offset o available again, or
// archives it when it reached the delivery limit.
func (p *partitionState) release(o int64, r *inflight, lim limits, ch *changes) {
	if r.deliveries >= lim.deliveryLimit {
		p.exhaust(o, r, reasonDeliveryLimit, lim, ch)
		return
	}
	p.acquired--
	r.state, r.member, r.deadline = stateAvailable, "", time.Time{}
	ch.offsets = append(ch.offsets, o)
	ch.released = true
}

// acknowledge applies member's acknowledgement of first..last: one type
// for all, or one per offset. Every offset must be acquired by member
// (kerr.InvalidRecordState otherwise, and nothing changes); types must be
// valid (kerr.InvalidRequest). Renew extends the locks and changes nothing
// durable.
func (p *partitionState) acknowledge(now time.Time, member string, first, last int64, types []AckType, lim limits, renewAllowed bool) (changes, error) {
	var ch changes
	if last < first || len(types) == 0 || (len(types) != 1 && int64(len(types)) != last-first+1) {
		return ch, kerr.InvalidRequest
	}
	for _, t := range types {
		if t < AckGap || t > AckRenew || (t == AckRenew && !renewAllowed) {
			return ch, kerr.InvalidRequest
		}
	}
	if first < p.start || last >= p.end() {
		return ch, kerr.InvalidRecordState
	}
	for o := first; o <= last; o++ {
		if r := p.at(o); r.state != stateAcquired || r.member != member {
			return ch, kerr.InvalidRecordState
		}
	}
	for o := first; o <= last; o++ {
		t := types[0]
		if len(types) > 1 {
			t = types[o-first]
		}
		r := p.at(o)
		switch t {
		case AckGap:
			p.acquired--
			r.state, r.member, r.deadline = stateArchived, "", time.Time{}
			ch.offsets = append(ch.offsets, o)
		case AckAccept:
			p.acquired--
			r.state, r.member, r.deadline = stateAcknowledged, "", time.Time{}
			ch.offsets = append(ch.offsets, o)
		case AckRelease:
			p.release(o, r, lim, &ch)
		case AckReject:
			p.exhaust(o, r, reasonRejected, lim, &ch)
		case AckRenew:
			r.deadline = now.Add(lim.lock)
		}
	}
	if p.advance() {
		ch.released = true
	}
	return ch, nil
}

// expire releases the acquired records whose lock expired at now.
func (p *partitionState) expire(now time.Time, lim limits) changes {
	var ch changes
	if p.acquired == 0 {
		return ch
	}
	for i := range p.records {
		r := &p.records[i]
		if r.state == stateAcquired && !r.deadline.After(now) {
			p.release(p.start+int64(i), r, lim, &ch)
		}
	}
	p.advance()
	return ch
}

// hold makes the available records of refs (those at or after the end
// too) acquired by holder until deadline, with at least the delivery
// count of their ref, without counting a delivery: their lock expiry
// releases them, or archives them at the delivery limit.
func (p *partitionState) hold(refs []deadLetterRef, holder string, deadline time.Time) {
	for _, ref := range refs {
		o := ref.offset
		if o < p.start {
			continue
		}
		for p.end() <= o {
			p.records = append(p.records, inflight{})
		}
		r := p.at(o)
		if r.state != stateAvailable {
			continue
		}
		r.state, r.member, r.deadline = stateAcquired, holder, deadline
		r.deliveries = max(r.deliveries, ref.deliveries)
		p.acquired++
	}
}

// releaseMember releases every record member holds (its share session
// closed, or it left the group).
func (p *partitionState) releaseMember(member string, lim limits) changes {
	var ch changes
	if p.acquired == 0 {
		return ch
	}
	for i := range p.records {
		r := &p.records[i]
		if r.state == stateAcquired && r.member == member {
			p.release(p.start+int64(i), r, lim, &ch)
		}
	}
	p.advance()
	return ch
}

// nextDeadline returns the earliest lock deadline, false when nothing is
// acquired.
func (p *partitionState) nextDeadline() (time.Time, bool) {
	if p.acquired == 0 {
		return time.Time{}, false
	}
	var d time.Time
	for i := range p.records {
		r := &p.records[i]
		if r.state == stateAcquired && (d.IsZero() || r.deadline.Before(d)) {
			d = r.deadline
		}
	}
	return d, !d.IsZero()
}

// write returns the durable form of the changed offsets: runs of
// consecutive offsets in one state with one delivery count, and the start
// offset. Offsets the start offset has passed are left out (the start
// offset covers them).
func (p *partitionState) write(stateEpoch, leaderEpoch int32, offsets []int64) sharestate.Write {
	w := sharestate.Write{StateEpoch: stateEpoch, LeaderEpoch: leaderEpoch, StartOffset: p.start}
	sorted := append([]int64(nil), offsets...)
	slices.Sort(sorted)
	for _, o := range sorted {
		if o < p.start || o >= p.end() {
			continue
		}
		r := p.at(o)
		st := sharestate.RecordState(r.state)
		if r.state == stateAcquired {
			st = sharestate.Available
		}
		if n := len(w.Batches); n > 0 {
			b := &w.Batches[n-1]
			if b.Last == o {
				continue
			}
			if b.Last == o-1 && b.State == st && b.DeliveryCount == r.deliveries {
				b.Last = o
				continue
			}
		}
		w.Batches = append(w.Batches, sharestate.Batch{First: o, Last: o, State: st, DeliveryCount: r.deliveries})
	}
	return w
}
