package consumergroup

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/zap"
)

// PartitionLoad is what a coordinator over an internal topic (groups,
// transactions, share state) holds of one of the topic's partitions: the
// leader epoch whose state it loaded, or a load under way. The
// coordinator follows the partition's leadership lazily with Follow at
// each request and timer, and brackets each load with Begin (or Follow's
// start) and End/Install. Not safe for concurrent use: the coordinator's
// lock guards it.
type PartitionLoad struct {
	// epoch is the leader epoch the state was loaded in; meaningful when
	// loaded.
	epoch  int32
	loaded bool
	// loading is set while a load runs, for loadingEpoch: requests
	// answer COORDINATOR_LOAD_IN_PROGRESS.
	loading      bool
	loadingEpoch int32
}

// Follow decides whether this node, self, coordinates the partition now
// that its leader is node in epoch:
//   - another node leads it, or none: NOT_COORDINATOR, and what this node
//     held of it must be dropped (unload names why);
//   - this node leads it in the epoch it loaded: code 0;
//   - this node leads it in an epoch it has not loaded: what it held must
//     be dropped, and load asks the caller to start a load in epoch (now
//     marked under way); until it ends, COORDINATOR_LOAD_IN_PROGRESS.
func (o *PartitionLoad) Follow(self, node, epoch int32) (code int16, unload string, load bool) {
	if node != self {
		if o.loaded {
			o.loaded = false
			return kerr.NotCoordinator.Code, "leadership moved", false
		}
		return kerr.NotCoordinator.Code, "", false
	}
	switch {
	case o.loading:
		return kerr.CoordinatorLoadInProgress.Code, "", false
	case o.loaded && o.epoch == epoch:
		return 0, "", false
	}
	if o.loaded {
		unload = "leader epoch changed"
	}
	o.loaded = false
	o.Begin(epoch)
	return kerr.CoordinatorLoadInProgress.Code, unload, true
}

// Begin marks a load in epoch under way (a coordinator loading what it
// leads at start).
func (o *PartitionLoad) Begin(epoch int32) { o.loading, o.loadingEpoch = true, epoch }

// End ends the load in epoch and reports whether it was the one wanted:
// false when a later load replaced it, and then its result is dropped.
func (o *PartitionLoad) End(epoch int32) bool {
	if !o.loading || o.loadingEpoch != epoch {
		return false
	}
	o.loading = false
	return true
}

// Install records the state loaded in epoch as held.
func (o *PartitionLoad) Install(epoch int32) { o.loaded, o.epoch = true, epoch }

// Drop forgets the state held (the coordinator has dropped it).
func (o *PartitionLoad) Drop() { o.loaded = false }

// Loaded returns the epoch the held state was loaded in, false when none
// is held.
func (o *PartitionLoad) Loaded() (int32, bool) { return o.epoch, o.loaded }

// Loading reports whether a load is under way.
func (o *PartitionLoad) Loading() bool { return o.loading }

// LoadLed loads, at start, every one of partitions partitions of a
// coordinator's internal topic (reached with handle; nil when not in the
// view) that node self leads already, one after the other: begin marks the
// load under way (the caller takes its lock), load runs it. A partition
// not served yet (NOT_LEADER_OR_FOLLOWER) is left to the first request
// that needs it; any other error ends LoadLed with it.
func LoadLed(partitions, self int32, handle func(int32) Partition, begin func(p, epoch int32), load func(p int32, h Partition, epoch int32) error) error {
	for p := int32(0); p < partitions; p++ {
		h := handle(p)
		if h == nil {
			continue
		}
		node, epoch := h.Leader()
		if node != self {
			continue
		}
		begin(p, epoch)
		if err := load(p, h, epoch); err != nil && !errors.Is(err, kerr.NotLeaderForPartition) {
			return err
		}
	}
	return nil
}

// LoadSucceeded reports whether a load of partition p of topic that has
// ended (End reported it the one wanted) with err may install what it
// read: not once the coordinator is closed, not when the load failed
// (logged at Warn; the next request starts another), and not when node
// self no longer leads h in epoch or the load found it did not serve the
// partition (logged at Debug as abandoned). The coordinator's lock is
// held.
func LoadSucceeded(logger *zap.Logger, topic string, p int32, h Partition, self, epoch int32, closed bool, err error) bool {
	if closed {
		return false
	}
	if err == nil {
		if node, now := h.Leader(); node != self || now != epoch {
			err = fmt.Errorf("%s-%d: leadership changed while loading: %w", topic, p, kerr.NotLeaderForPartition)
		}
	}
	switch {
	case errors.Is(err, kerr.NotLeaderForPartition):
		logger.Debug("partition load abandoned", zap.String("topic", topic), zap.Int32("partition", p), zap.Int32("epoch", epoch), zap.Error(err))
		return false
	case err != nil:
		logger.Warn("partition load failed", zap.String("topic", topic), zap.Int32("partition", p), zap.Int32("epoch", epoch), zap.Error(err))
		return false
	}
	return true
}
