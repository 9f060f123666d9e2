package partition

import (
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// Producer expiry (producer.id.expiration.ms, Kafka's
// ProducerStateManager.removeExpiredProducers). The state of a producer
// with no transaction under way is removed once the partition's clock is
// Config.ProducerIDExpiration past the producer's last timestamp; its
// next batch is then that of an unknown producer (sequence 0 expected).
//
// Every replica checks batches against its producer state when they
// apply, so the state must change identically everywhere: expiry reads no
// wall clock. The partition's clock is the largest timestamp of the
// batches in the log (markers, stamped with the leader's clock, and
// batches of any producer, or none, included), which every replica
// computes alike from the same log, and a replay after a restart too. The
// producers are swept each time the clock crosses a multiple of
// expirySweepStep: the same batches trigger the same sweeps everywhere.
// Under CreateTime the clock is the producers' (a client whose clock runs
// ahead advances it; message.timestamp.after.max.ms bounds that).

// maxExpirySweepStep bounds the interval between sweeps, as Kafka's
// producer.id.expiration.check.interval.ms (10 minutes) does.
const maxExpirySweepStep = 10 * time.Minute

// expirySweepStep returns the sweep interval for expiration, in
// milliseconds: an eighth of it, at least 1 ms and at most
// maxExpirySweepStep.
func expirySweepStep(expiration time.Duration) int64 {
	return min(max(expiration.Milliseconds()/8, 1), maxExpirySweepStep.Milliseconds())
}

// observe accounts for batch h, now in the log with max timestamp
// timestamp: its producer's last timestamp and the partition's clock
// move up to it, and a sweep runs if the clock crossed a sweep boundary.
// Called with Replica.mu held, after the batch's producer state is
// committed (or, for a batch stored but refused, left as it was).
func (r *Replica) observe(h *log.BatchHeader, timestamp int64) {
	s := &r.producers
	if h.Idempotent() {
		if e, ok := s.entries[h.ProducerID]; ok && timestamp > e.lastTimestamp {
			e.lastTimestamp = timestamp
			s.entries[h.ProducerID] = e
		}
	}
	if timestamp <= s.clock {
		return
	}
	previous := s.clock
	s.clock = timestamp
	step := expirySweepStep(r.cfg.ProducerIDExpiration)
	if previous >= 0 && floorDiv(previous, step) == floorDiv(timestamp, step) {
		return
	}
	if n := s.expire(timestamp, r.cfg.ProducerIDExpiration); n > 0 {
		r.logger.Debug("idle producers expired", zap.Int("producers", n), zap.Int64("clock", timestamp),
			zap.Duration("producer.id.expiration", r.cfg.ProducerIDExpiration))
	}
}

// expire removes the producers without a transaction under way whose
// last timestamp lies more than expiration before clock, and returns how
// many.
func (s *producerStates) expire(clock int64, expiration time.Duration) int {
	ms := expiration.Milliseconds()
	if ms >= clock {
		return 0
	}
	before := clock - ms
	n := 0
	for id, e := range s.entries {
		if !e.inTxn && e.lastTimestamp >= 0 && e.lastTimestamp < before {
			delete(s.entries, id)
			n++
		}
	}
	return n
}

// floorDiv is a / b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
