package txn

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// loadLed loads, at start, every __transaction_state partition this node
// leads already. Partitions led later are loaded when a request first
// needs them (coordinatorLocked).
func (c *Coordinator) loadLed() error {
	begin := func(p, epoch int32) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.owned[p].Begin(epoch)
	}
	return consumergroup.LoadLed(c.partitions, c.self, c.handle, begin, c.loadPartition)
}

// loadPartition rebuilds the transactional ids of partition p, which this
// node leads in epoch, reading it from its log start to its high
// watermark (on a leader, every committed record) and applying records in
// order, the last record of an id winning. The ids are installed only if
// the load is still wanted and the node still leads p in epoch. Each
// transaction found in PrepareCommit or PrepareAbort has its markers
// (re)sent, with epoch as the coordinator epoch.
func (c *Coordinator) loadPartition(p int32, h consumergroup.Partition, epoch int32) (err error) {
	began := time.Now()
	loaded := make(map[string]*metadata)
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		o := &c.owned[p]
		if !o.End(epoch) {
			return
		}
		if !consumergroup.LoadSucceeded(c.logger, StateTopic, p, h, c.self, epoch, c.closed, err) {
			return
		}
		resend := 0
		for id, m := range loaded {
			c.txns[id] = m
			if preparing(m.state) {
				c.sendMarkersLocked(m, p, epoch)
				resend++
			}
		}
		o.Install(epoch)
		// Per partition: Debug, unless it took over half-completed
		// transactions, which an operator wants to see.
		level := zap.DebugLevel
		if resend > 0 {
			level = zap.InfoLevel
		}
		c.logger.Log(level, "transaction partition loaded", zap.Int32("partition", p), zap.Int32("epoch", epoch),
			zap.Int("transactional-ids", len(loaded)), zap.Int("markers-to-resend", resend), zap.Duration("took", time.Since(began)))
	}()
	stopped := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closed
	}
	err = consumergroup.ReplayLog(h, stopped, func(hdr log.BatchHeader, rec *record.Record) error {
		if hdr.Control() {
			return nil
		}
		id, m, err := decodeRecord(rec.Key, rec.Value)
		switch {
		case err != nil:
			c.logger.Warn("skipping undecodable transaction record", zap.Int64("offset", hdr.BaseOffset+int64(rec.OffsetDelta)), zap.Error(err))
		case m == nil:
			delete(loaded, id)
		default:
			loaded[id] = m
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s-%d: %w", StateTopic, p, err)
	}
	return nil
}
