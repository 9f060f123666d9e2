package txn

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/partition"
)

const (
	// markerRetryMin and markerRetryMax bound the wait between attempts
	// to write the markers still missing (a partition without a leader,
	// a leader that refused).
	markerRetryMin = 20 * time.Millisecond
	markerRetryMax = time.Second
	// markerAttemptTimeout bounds one attempt of the marker writer.
	markerAttemptTimeout = 30 * time.Second
	// completeTimeout bounds the wait for the Complete* record.
	completeTimeout = 30 * time.Second
)

// sendMarkersLocked starts writing the markers of m, which is in
// PrepareCommit or PrepareAbort, on every partition of its transaction,
// as the coordinator of partition p in epoch; once all are written, m
// moves to CompleteCommit or CompleteAbort. The sender gives up when this
// node stops coordinating p in epoch or m changes: the next coordinator
// resends from the log. c.mu is held.
func (c *Coordinator) sendMarkersLocked(m *metadata, p, epoch int32) {
	if c.closed {
		// Close waits for senders: none may start after it. The next
		// coordinator resends from the log.
		return
	}
	marker := partition.TxnMarker{
		ProducerID:       m.producerID,
		ProducerEpoch:    m.producerEpoch,
		Commit:           m.state == statePrepareCommit,
		CoordinatorEpoch: epoch,
	}
	state := m.state
	remaining := m.sortedPartitions()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.sendMarkers(m, state, marker, remaining, p, epoch)
	}()
}

// sendMarkers is sendMarkersLocked's goroutine.
func (c *Coordinator) sendMarkers(m *metadata, state kmsg.TransactionState, marker partition.TxnMarker, remaining []TopicPartition, p, epoch int32) {
	current := func() bool {
		return !c.closed && c.txns[m.id] == m && m.state == state && m.producerID == marker.ProducerID &&
			m.producerEpoch == marker.ProducerEpoch && c.leadsLocked(p, epoch)
	}
	backoff := markerRetryMin
	for len(remaining) > 0 {
		c.mu.Lock()
		ok, w := current(), c.markers
		c.mu.Unlock()
		if !ok {
			return
		}
		if w != nil {
			ctx, cancel := context.WithTimeout(c.ctx, markerAttemptTimeout)
			failed := w.WriteTxnMarkers(ctx, marker, remaining)
			cancel()
			next := remaining[:0]
			for _, tp := range remaining {
				if err, bad := failed[tp]; bad {
					next = append(next, tp)
					c.logger.Debug("transaction marker not written yet", zap.String("transactional-id", m.id),
						zap.String("topic", tp.Topic), zap.Int32("partition", tp.Partition), zap.Error(err))
				}
			}
			remaining = next
			if len(remaining) == 0 {
				break
			}
		}
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, markerRetryMax)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !current() {
		return
	}
	next := m.clone()
	next.state = stateCompleteAbort
	if marker.Commit {
		next.state = stateCompleteCommit
	}
	next.partitions = map[TopicPartition]struct{}{}
	next.startTime = time.Time{}
	next.lastUpdate = c.now()
	if m.nextProducerID >= 0 {
		// A version 2 EndTxn exhausted the epoch: the markers carried
		// the last one, and the producer continues with the new id.
		next.lastProducerID, next.producerID = m.producerID, m.nextProducerID
		next.producerEpoch, next.lastProducerEpoch, next.nextProducerID = 0, -1, -1
	}
	ctx, cancel := context.WithTimeout(c.ctx, completeTimeout)
	defer cancel()
	if code := c.persist(ctx, m, next); code != 0 {
		// The next coordinator (or this one, after a reload) finds the
		// transaction prepared and writes its markers again: markers
		// are idempotent for a partition that already has them.
		c.logger.Warn("transaction completion not stored", zap.String("transactional-id", m.id), zap.Error(kerr.ErrorForCode(code)))
		return
	}
	c.logger.Debug("transaction completed", zap.String("transactional-id", m.id), zap.Bool("commit", marker.Commit))
}
