package sharestate

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// loadLed loads, at start, every __share_group_state partition this node
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

// loadPartition rebuilds the keys of partition p, which this node leads
// in epoch, reading it from its log start to its high watermark (on a
// leader, every committed record) and applying records in order, the
// last record of a key winning and a tombstone removing it. The keys are
// installed only if the load is still wanted and the node still leads p
// in epoch.
func (c *Coordinator) loadPartition(p int32, h consumergroup.Partition, epoch int32) (err error) {
	began := time.Now()
	loaded := make(map[Key]*entry)
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		o := &c.owned[p]
		if !o.End(epoch) {
			return
		}
		if !consumergroup.LoadSucceeded(c.logger, TopicName, p, h, c.self, epoch, c.closed, err) {
			return
		}
		o.keys = loaded
		o.Install(epoch)
		c.logger.Debug("share state partition loaded", zap.Int32("partition", p), zap.Int32("epoch", epoch),
			zap.Int("share-partitions", len(loaded)), zap.Duration("took", time.Since(began)))
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
		at := zap.Int64("offset", hdr.BaseOffset+int64(rec.OffsetDelta))
		k, err := decodeKey(rec.Key)
		if err != nil {
			c.logger.Warn("skipping undecodable share state record", at, zap.Error(err))
			return nil
		}
		if rec.Value == nil {
			delete(loaded, k)
			return nil
		}
		s, err := decodeValue(rec.Value)
		if err != nil {
			c.logger.Warn("skipping undecodable share state record", at, zap.Error(err))
			return nil
		}
		loaded[k] = &entry{state: s}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s-%d: %w", TopicName, p, err)
	}
	return nil
}
