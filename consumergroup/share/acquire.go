package share

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
)

// Acquire acknowledges nothing and acquires for member of group the next
// available records of t, locked for the group's lock duration: first the
// in-flight records released or expired, then new records up to the high
// watermark (the last stable offset under share.isolation.level =
// read_committed, where aborted transactions' records are archived). An
// empty Acquired means nothing is available now. Changes it makes to the
// durable state (records exhausted by a lowered delivery limit) are
// persisted before it returns. Errors: NOT_LEADER_OR_FOLLOWER, the
// persister's, the partition's.
func (m *Manager) Acquire(ctx context.Context, group, member string, t Target, req AcquireRequest) (Acquired, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.PersistTimeout)
	defer cancel()
	sp, err := m.acquirePartition(ctx, group, t)
	if err != nil {
		return Acquired{}, err
	}
	defer sp.mu.Unlock()
	cfg := m.groups.ShareGroupConfig(group)
	if err := m.expireLocked(ctx, group, sp, cfg); err != nil {
		return Acquired{}, err
	}
	if sp.dropped {
		return Acquired{}, kerr.NotLeaderForPartition // lost while the expiry was written: retried
	}
	if err := m.revalidateLocked(ctx, group, sp); err != nil {
		return Acquired{}, err
	}
	lim := m.limits(cfg)
	if logStart := t.Data.Offsets().LogStart; sp.state.start < logStart {
		sp.state.moveStart(logStart)
	}
	if sp.state.full(lim.maxLocks) {
		// Nothing in flight is available and no new record may be
		// acquired: answer without reading the log, which long-polling
		// ShareFetches woken by every release would otherwise do.
		return Acquired{HoldsLocks: sp.state.holds(member)}, nil
	}
	isolation := partition.ReadUncommitted
	if cfg.ReadCommitted {
		isolation = partition.ReadCommitted
	}
	var rr partition.ReadResult
	for attempt := 0; ; attempt++ {
		if logStart := t.Data.Offsets().LogStart; sp.state.start < logStart {
			sp.state.moveStart(logStart)
		}
		rr, err = t.Data.Read(nil, partition.ReadRequest{
			Offset:      sp.state.nextOffset(),
			MaxBytes:    max(req.MaxBytes, 0),
			MinOneBatch: true,
			Isolation:   isolation,
			Buffer:      req.Buffer,
		})
		// Retention may move the log start between the two loads.
		if errors.Is(err, kerr.OffsetOutOfRange) && attempt == 0 && sp.state.nextOffset() < t.Data.Offsets().LogStart {
			continue
		}
		break
	}
	if errors.Is(err, kerr.OffsetOutOfRange) {
		// The next offset is past the high watermark: the end offset
		// never passes it, so only a truncated log does this. Nothing
		// to deliver until the log catches up.
		return Acquired{}, nil
	}
	if err != nil {
		return Acquired{}, err
	}
	spans, batches, err := splitSpans(rr.Records, rr.Aborted)
	if err != nil {
		return Acquired{}, err
	}
	ranges, ch := sp.state.acquire(m.now(), member, spans, max(req.MaxRecords, 1), req.Strict, lim)
	if err := m.persistLocked(ctx, group, sp, cfg, ch); err != nil {
		return Acquired{}, err
	}
	if sp.dropped {
		// The acquisition lived in a state now dropped: the next
		// leader or load hands the records out again, so they must not
		// reach this member too.
		return Acquired{}, kerr.NotLeaderForPartition
	}
	m.scheduleLocked(sp)
	if len(ranges) == 0 {
		return Acquired{}, nil
	}
	out := Acquired{Ranges: make([]AcquiredRange, len(ranges))}
	for i, r := range ranges {
		out.Ranges[i] = AcquiredRange{First: r.first, Last: r.last, DeliveryCount: r.deliveries}
	}
	// The batches from the first to the last holding an acquired offset:
	// the consumer keeps only the acquired records.
	first, last := -1, -1
	for i, b := range batches {
		if b.last >= ranges[0].first && b.first <= ranges[len(ranges)-1].last {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first >= 0 {
		out.Records = rr.Records[batches[first].pos:batches[last].end]
	}
	return out, nil
}

// batchPos is where a batch lies in a read's bytes, and its offsets.
type batchPos struct {
	pos, end    int
	first, last int64
}

// splitSpans parses the batches of a read into spans: a control batch,
// and under read_committed a batch of an aborted transaction (aborted
// lists them as the partition reports them to Fetch), is skipped.
func splitSpans(records []byte, aborted []partition.AbortedTxn) ([]span, []batchPos, error) {
	var (
		spans   []span
		batches []batchPos
		pos     int
		// active holds the producers whose aborted transaction has begun
		// at the current batch and whose ABORT marker is not reached.
		active map[int64]bool
		next   int // next entry of aborted to activate
	)
	err := log.SplitBatches(records, func(b []byte, h log.BatchHeader) error {
		for next < len(aborted) && aborted[next].FirstOffset <= h.LastOffset() {
			if active == nil {
				active = make(map[int64]bool)
			}
			active[aborted[next].ProducerID] = true
			next++
		}
		skip := h.Control()
		if h.Transactional() && active[h.ProducerID] {
			skip = true
			if h.Control() {
				delete(active, h.ProducerID)
			}
		}
		spans = append(spans, span{first: h.BaseOffset, last: h.LastOffset(), skip: skip})
		batches = append(batches, batchPos{pos: pos, end: pos + len(b), first: h.BaseOffset, last: h.LastOffset()})
		pos += len(b)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return spans, batches, nil
}

// Acknowledge applies member's acknowledgements of t's records, all or
// none of each batch, and persists them (and writes the dead letters)
// before it returns. Per batch errors: INVALID_RECORD_STATE when an offset
// is not acquired by member, INVALID_REQUEST for bad types (renew only
// when renewAllowed); the first one is returned after the valid batches
// are applied. NOT_LEADER_OR_FOLLOWER and the persister's errors fail
// the whole call.
func (m *Manager) Acknowledge(ctx context.Context, group, member string, t Target, acks []AckBatch, renewAllowed bool) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.PersistTimeout)
	defer cancel()
	sp, err := m.acquirePartition(ctx, group, t)
	if err != nil {
		return err
	}
	defer sp.mu.Unlock()
	cfg := m.groups.ShareGroupConfig(group)
	lim := m.limits(cfg)
	// Records whose lock expired are no longer the member's: expire
	// first, so a late acknowledgement is refused.
	ch := sp.state.expire(m.now(), lim)
	var first error
	for _, a := range acks {
		c, err := sp.state.acknowledge(m.now(), member, a.First, a.Last, a.Types, lim, renewAllowed)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		ch.offsets = append(ch.offsets, c.offsets...)
		ch.deadLetters = append(ch.deadLetters, c.deadLetters...)
		ch.released = ch.released || c.released
	}
	if err := m.persistLocked(ctx, group, sp, cfg, ch); err != nil {
		return err
	}
	if !sp.dropped {
		m.scheduleLocked(sp)
	}
	return first
}

// ReleaseMember releases the records member of group holds in t (its
// share session closed) and persists that.
func (m *Manager) ReleaseMember(ctx context.Context, group, member string, t Target) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.PersistTimeout)
	defer cancel()
	sp, err := m.acquirePartition(ctx, group, t)
	if err != nil {
		return err
	}
	defer sp.mu.Unlock()
	cfg := m.groups.ShareGroupConfig(group)
	ch := sp.state.releaseMember(member, m.limits(cfg))
	if err := m.persistLocked(ctx, group, sp, cfg, ch); err != nil {
		return err
	}
	if !sp.dropped {
		m.scheduleLocked(sp)
	}
	return nil
}
