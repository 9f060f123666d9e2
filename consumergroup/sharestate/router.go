package sharestate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// Peers sends share coordinator requests to other nodes over the Kafka
// protocol (cmd/sluice implements it with a kgo client per peer).
type Peers interface {
	// Request sends req to node and returns its response. A transport
	// failure (the node is down, the connection broke) is returned as
	// is: the Router retries it. Safe for concurrent use.
	Request(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error)
}

// RouterOptions carries the Router's collaborators and tunables.
type RouterOptions struct {
	// Logger; nil means nop.
	Logger *zap.Logger
	// MinBackoff is the first wait before a retry; doubled on each retry
	// up to MaxBackoff. Zero means 10 ms and 500 ms.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one request to another node: a node that
	// stopped answering (frozen, cut off) is given up on and the
	// coordinator looked up again, as leadership moves away from it.
	// Zero means 5 s.
	AttemptTimeout time.Duration
}

// Router is the Persister of a node: for each key it finds the share
// coordinator (the leader of the key's __share_group_state partition in
// this node's view), calls the local Coordinator when that is this node
// and sends the request to it through Peers otherwise, retrying
// NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
// COORDINATOR_NOT_AVAILABLE, REQUEST_TIMED_OUT and transport failures
// with backoff until ctx ends (every operation is idempotent, so a retry
// of one that landed changes nothing). Safe for concurrent use.
type Router struct {
	coordinator *Coordinator
	// leader returns the node coordinating a key, -1 for none
	// (coordinator.Leader; tests replace it).
	leader     func(Key) int32
	peers      Peers
	logger     *zap.Logger
	minBackoff time.Duration
	maxBackoff time.Duration
	attempt    time.Duration
}

var _ Persister = (*Router)(nil)

// NewRouter returns the Persister over this node's coordinator c and its
// peers (nil: only keys this node coordinates are reachable).
func NewRouter(c *Coordinator, peers Peers, opts RouterOptions) *Router {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 10 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(500*time.Millisecond, opts.MinBackoff)
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 5 * time.Second
	}
	return &Router{coordinator: c, leader: c.Leader, peers: peers, logger: opts.Logger.Named("sharestate"),
		minBackoff: opts.MinBackoff, maxBackoff: opts.MaxBackoff, attempt: opts.AttemptTimeout}
}

// Initialize implements Persister.
func (r *Router) Initialize(ctx context.Context, key Key, stateEpoch int32, startOffset int64) error {
	req := kmsg.NewPtrInitializeShareGroupStateRequest()
	req.GroupID = key.Group
	rt := kmsg.NewInitializeShareGroupStateRequestTopic()
	rt.TopicID = key.TopicID
	rp := kmsg.NewInitializeShareGroupStateRequestTopicPartition()
	rp.Partition, rp.StateEpoch, rp.StartOffset = key.Partition, stateEpoch, startOffset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return r.call(ctx, key, "initialize", req,
		func(ctx context.Context) kmsg.Response { return r.coordinator.InitializeShareGroupState(req)(ctx) },
		func(resp kmsg.Response) error {
			for _, t := range resp.(*kmsg.InitializeShareGroupStateResponse).Topics {
				for _, p := range t.Partitions {
					if t.TopicID == key.TopicID && p.Partition == key.Partition {
						return responseError(p.ErrorCode, p.ErrorMessage)
					}
				}
			}
			return errMissingPartition
		})
}

// Read implements Persister. The answer's LeaderEpoch is leaderEpoch
// (ReadShareGroupState does not carry the stored one, which is never
// higher: that would have fenced the read), -1 when the key has no
// state.
func (r *Router) Read(ctx context.Context, key Key, leaderEpoch int32) (State, error) {
	req := kmsg.NewPtrReadShareGroupStateRequest()
	req.GroupID = key.Group
	rt := kmsg.NewReadShareGroupStateRequestTopic()
	rt.TopicID = key.TopicID
	rp := kmsg.NewReadShareGroupStateRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch = key.Partition, leaderEpoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	var s State
	err := r.call(ctx, key, "read", req,
		func(ctx context.Context) kmsg.Response { return r.coordinator.ReadShareGroupState(req)(ctx) },
		func(resp kmsg.Response) error {
			for _, t := range resp.(*kmsg.ReadShareGroupStateResponse).Topics {
				for _, p := range t.Partitions {
					if t.TopicID != key.TopicID || p.Partition != key.Partition {
						continue
					}
					if err := responseError(p.ErrorCode, p.ErrorMessage); err != nil {
						return err
					}
					s = State{StateEpoch: p.StateEpoch, LeaderEpoch: leaderEpoch, StartOffset: p.StartOffset}
					if p.StateEpoch < 0 {
						// Uninitialized: nothing was stored, leader
						// epoch included.
						s.LeaderEpoch = -1
					}
					for _, b := range p.StateBatches {
						s.Batches = append(s.Batches, Batch{First: b.FirstOffset, Last: b.LastOffset, State: RecordState(b.DeliveryState), DeliveryCount: b.DeliveryCount})
					}
					return nil
				}
			}
			return errMissingPartition
		})
	return s, err
}

// Write implements Persister.
func (r *Router) Write(ctx context.Context, key Key, w Write) error {
	req := kmsg.NewPtrWriteShareGroupStateRequest()
	req.GroupID = key.Group
	rt := kmsg.NewWriteShareGroupStateRequestTopic()
	rt.TopicID = key.TopicID
	rp := kmsg.NewWriteShareGroupStateRequestTopicPartition()
	rp.Partition, rp.StateEpoch, rp.LeaderEpoch, rp.StartOffset = key.Partition, w.StateEpoch, w.LeaderEpoch, w.StartOffset
	for _, b := range w.Batches {
		sb := kmsg.NewWriteShareGroupStateRequestTopicPartitionStateBatch()
		sb.FirstOffset, sb.LastOffset, sb.DeliveryState, sb.DeliveryCount = b.First, b.Last, int8(b.State), b.DeliveryCount
		rp.StateBatches = append(rp.StateBatches, sb)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return r.call(ctx, key, "write", req,
		func(ctx context.Context) kmsg.Response { return r.coordinator.WriteShareGroupState(req)(ctx) },
		func(resp kmsg.Response) error {
			for _, t := range resp.(*kmsg.WriteShareGroupStateResponse).Topics {
				for _, p := range t.Partitions {
					if t.TopicID == key.TopicID && p.Partition == key.Partition {
						return responseError(p.ErrorCode, p.ErrorMessage)
					}
				}
			}
			return errMissingPartition
		})
}

// ReadSummary implements Persister.
func (r *Router) ReadSummary(ctx context.Context, key Key) (Summary, error) {
	req := kmsg.NewPtrReadShareGroupStateSummaryRequest()
	req.GroupID = key.Group
	rt := kmsg.NewReadShareGroupStateSummaryRequestTopic()
	rt.TopicID = key.TopicID
	rp := kmsg.NewReadShareGroupStateSummaryRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch = key.Partition, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	var s Summary
	err := r.call(ctx, key, "read summary", req,
		func(ctx context.Context) kmsg.Response { return r.coordinator.ReadShareGroupStateSummary(req)(ctx) },
		func(resp kmsg.Response) error {
			for _, t := range resp.(*kmsg.ReadShareGroupStateSummaryResponse).Topics {
				for _, p := range t.Partitions {
					if t.TopicID == key.TopicID && p.Partition == key.Partition {
						s = Summary{StateEpoch: p.StateEpoch, LeaderEpoch: p.LeaderEpoch, StartOffset: p.StartOffset, DeliveryCompleteCount: p.DeliveryCompleteCount}
						return responseError(p.ErrorCode, p.ErrorMessage)
					}
				}
			}
			return errMissingPartition
		})
	return s, err
}

// Delete implements Persister.
func (r *Router) Delete(ctx context.Context, key Key) error {
	req := kmsg.NewPtrDeleteShareGroupStateRequest()
	req.GroupID = key.Group
	rt := kmsg.NewDeleteShareGroupStateRequestTopic()
	rt.TopicID = key.TopicID
	rp := kmsg.NewDeleteShareGroupStateRequestTopicPartition()
	rp.Partition = key.Partition
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return r.call(ctx, key, "delete", req,
		func(ctx context.Context) kmsg.Response { return r.coordinator.DeleteShareGroupState(req)(ctx) },
		func(resp kmsg.Response) error {
			for _, t := range resp.(*kmsg.DeleteShareGroupStateResponse).Topics {
				for _, p := range t.Partitions {
					if t.TopicID == key.TopicID && p.Partition == key.Partition {
						return responseError(p.ErrorCode, p.ErrorMessage)
					}
				}
			}
			return errMissingPartition
		})
}

// errMissingPartition reports a response without the share-partition
// asked for.
var errMissingPartition = errors.New("sharestate: response without the share-partition asked for")

// call runs one operation on key at its coordinator until it succeeds,
// fails for good, or ctx ends: local runs it on this node's Coordinator,
// req is sent to another node, result reads the answer.
func (r *Router) call(ctx context.Context, key Key, op string, req kmsg.Request, local func(context.Context) kmsg.Response, result func(kmsg.Response) error) error {
	backoff := r.minBackoff
	for {
		node := r.leader(key)
		var err error
		switch {
		case node < 0:
			err = &failure{kerr.CoordinatorNotAvailable, "no leader of " + TopicName + " is known"}
		case node == r.coordinator.NodeID():
			err = result(local(ctx))
		case r.peers == nil:
			err = &failure{kerr.CoordinatorNotAvailable, fmt.Sprintf("node %d coordinates it and no peers are set", node)}
		default:
			// A timed-out attempt is retried like a broken connection
			// (every operation is idempotent).
			actx, cancel := context.WithTimeout(ctx, r.attempt)
			var resp kmsg.Response
			if resp, err = r.peers.Request(actx, node, req); err == nil {
				err = result(resp)
			}
			cancel()
		}
		if err == nil {
			return nil
		}
		if !retriable(err) {
			return fmt.Errorf("sharestate: %s %s at node %d: %w", op, CoordinatorKey(key), node, err)
		}
		if ctx.Err() != nil {
			// The deadline passed during the attempt: say so, as the
			// wait below does.
			return fmt.Errorf("sharestate: %s %s at node %d: gave up (%w) after: %w", op, CoordinatorKey(key), node, ctx.Err(), err)
		}
		r.logger.Debug("share state request retried", zap.String("op", op), zap.String("key", CoordinatorKey(key)),
			zap.Int32("node", node), zap.Duration("backoff", backoff), zap.Error(err))
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("sharestate: %s %s at node %d: gave up (%w) after: %w", op, CoordinatorKey(key), node, ctx.Err(), err)
		}
		backoff = min(2*backoff, r.maxBackoff)
	}
}

// responseError returns the error of a partition's code and message.
func responseError(code int16, msg *string) error {
	err := kerr.ErrorForCode(code)
	if err == nil {
		return nil
	}
	ke, ok := err.(*kerr.Error)
	if !ok {
		return err
	}
	f := &failure{code: ke, msg: "share coordinator"}
	if msg != nil {
		f.msg = *msg
	}
	return f
}

// retriable reports an error a retry may cure: the coordinator moved or
// is loading, or the request did not get through.
func retriable(err error) bool {
	var f *failure
	var ke *kerr.Error
	switch {
	case errors.As(err, &f):
		ke = f.code
	case errors.As(err, &ke):
	case errors.Is(err, errMissingPartition):
		return false
	default:
		// Transport failures: the node is down or the connection broke.
		return true
	}
	switch ke {
	case kerr.NotCoordinator, kerr.CoordinatorLoadInProgress, kerr.CoordinatorNotAvailable, kerr.RequestTimedOut, kerr.NotLeaderForPartition:
		return true
	}
	return false
}
