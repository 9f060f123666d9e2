package sharestate

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// The share coordinator's Kafka APIs (inter-broker, KIP-932). Each method
// takes a decoded request whose version is set, begins every
// share-partition's operation at once, in request order (their records
// are appended in that order), and returns a function that waits for
// their commits and builds the response of the request's version, never
// nil, with outcomes as error codes per partition. Call the function
// exactly once; it blocks until the commits or ctx.

// InitializeShareGroupState begins the initializations of req (key 83).
func (c *Coordinator) InitializeShareGroupState(req *kmsg.InitializeShareGroupStateRequest) func(context.Context) *kmsg.InitializeShareGroupStateResponse {
	var ops [][]pending
	for _, rt := range req.Topics {
		var row []pending
		for _, rp := range rt.Partitions {
			row = append(row, c.initialize(Key{req.GroupID, rt.TopicID, rp.Partition}, rp.StateEpoch, rp.StartOffset))
		}
		ops = append(ops, row)
	}
	return func(ctx context.Context) *kmsg.InitializeShareGroupStateResponse {
		resp := req.ResponseKind().(*kmsg.InitializeShareGroupStateResponse)
		for i, rt := range req.Topics {
			st := kmsg.NewInitializeShareGroupStateResponseTopic()
			st.TopicID = rt.TopicID
			for j, rp := range rt.Partitions {
				sp := kmsg.NewInitializeShareGroupStateResponseTopicPartition()
				sp.Partition = rp.Partition
				_, err := ops[i][j].wait(ctx)
				sp.ErrorCode, sp.ErrorMessage = c.errorFields(err)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}

// ReadShareGroupState begins the reads of req (key 84); a read by a newer
// leader stores its leader epoch.
func (c *Coordinator) ReadShareGroupState(req *kmsg.ReadShareGroupStateRequest) func(context.Context) *kmsg.ReadShareGroupStateResponse {
	var ops [][]pending
	for _, rt := range req.Topics {
		var row []pending
		for _, rp := range rt.Partitions {
			row = append(row, c.read(Key{req.GroupID, rt.TopicID, rp.Partition}, rp.LeaderEpoch))
		}
		ops = append(ops, row)
	}
	return func(ctx context.Context) *kmsg.ReadShareGroupStateResponse {
		resp := req.ResponseKind().(*kmsg.ReadShareGroupStateResponse)
		for i, rt := range req.Topics {
			st := kmsg.NewReadShareGroupStateResponseTopic()
			st.TopicID = rt.TopicID
			for j, rp := range rt.Partitions {
				sp := kmsg.NewReadShareGroupStateResponseTopicPartition()
				sp.Partition = rp.Partition
				s, err := ops[i][j].wait(ctx)
				sp.ErrorCode, sp.ErrorMessage = c.errorFields(err)
				if err == nil {
					sp.StateEpoch, sp.StartOffset = s.StateEpoch, s.StartOffset
					for _, b := range s.Batches {
						sb := kmsg.NewReadShareGroupStateResponseTopicPartitionStateBatch()
						sb.FirstOffset, sb.LastOffset = b.First, b.Last
						sb.DeliveryState, sb.DeliveryCount = int8(b.State), b.DeliveryCount
						sp.StateBatches = append(sp.StateBatches, sb)
					}
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}

// WriteShareGroupState begins the writes of req (key 85). v1's
// DeliveryCompleteCount is not stored: the summary computes it from the
// batches.
func (c *Coordinator) WriteShareGroupState(req *kmsg.WriteShareGroupStateRequest) func(context.Context) *kmsg.WriteShareGroupStateResponse {
	var ops [][]pending
	for _, rt := range req.Topics {
		var row []pending
		for _, rp := range rt.Partitions {
			w := Write{StateEpoch: rp.StateEpoch, LeaderEpoch: rp.LeaderEpoch, StartOffset: rp.StartOffset}
			for _, b := range rp.StateBatches {
				w.Batches = append(w.Batches, Batch{First: b.FirstOffset, Last: b.LastOffset, State: RecordState(b.DeliveryState), DeliveryCount: b.DeliveryCount})
			}
			row = append(row, c.write(Key{req.GroupID, rt.TopicID, rp.Partition}, w))
		}
		ops = append(ops, row)
	}
	return func(ctx context.Context) *kmsg.WriteShareGroupStateResponse {
		resp := req.ResponseKind().(*kmsg.WriteShareGroupStateResponse)
		for i, rt := range req.Topics {
			st := kmsg.NewWriteShareGroupStateResponseTopic()
			st.TopicID = rt.TopicID
			for j, rp := range rt.Partitions {
				sp := kmsg.NewWriteShareGroupStateResponseTopicPartition()
				sp.Partition = rp.Partition
				_, err := ops[i][j].wait(ctx)
				sp.ErrorCode, sp.ErrorMessage = c.errorFields(err)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}

// DeleteShareGroupState begins the deletions of req (key 86).
func (c *Coordinator) DeleteShareGroupState(req *kmsg.DeleteShareGroupStateRequest) func(context.Context) *kmsg.DeleteShareGroupStateResponse {
	var ops [][]pending
	for _, rt := range req.Topics {
		var row []pending
		for _, rp := range rt.Partitions {
			row = append(row, c.remove(Key{req.GroupID, rt.TopicID, rp.Partition}))
		}
		ops = append(ops, row)
	}
	return func(ctx context.Context) *kmsg.DeleteShareGroupStateResponse {
		resp := req.ResponseKind().(*kmsg.DeleteShareGroupStateResponse)
		for i, rt := range req.Topics {
			st := kmsg.NewDeleteShareGroupStateResponseTopic()
			st.TopicID = rt.TopicID
			for j, rp := range rt.Partitions {
				sp := kmsg.NewDeleteShareGroupStateResponseTopicPartition()
				sp.Partition = rp.Partition
				_, err := ops[i][j].wait(ctx)
				sp.ErrorCode, sp.ErrorMessage = c.errorFields(err)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}

// ReadShareGroupStateSummary begins the summaries of req (key 87): no
// fencing; the leader epoch in the request is ignored, as the summary
// serves administration, not a partition leader.
func (c *Coordinator) ReadShareGroupStateSummary(req *kmsg.ReadShareGroupStateSummaryRequest) func(context.Context) *kmsg.ReadShareGroupStateSummaryResponse {
	var ops [][]pending
	for _, rt := range req.Topics {
		var row []pending
		for _, rp := range rt.Partitions {
			row = append(row, c.summary(Key{req.GroupID, rt.TopicID, rp.Partition}))
		}
		ops = append(ops, row)
	}
	return func(ctx context.Context) *kmsg.ReadShareGroupStateSummaryResponse {
		resp := req.ResponseKind().(*kmsg.ReadShareGroupStateSummaryResponse)
		for i, rt := range req.Topics {
			st := kmsg.NewReadShareGroupStateSummaryResponseTopic()
			st.TopicID = rt.TopicID
			for j, rp := range rt.Partitions {
				sp := kmsg.NewReadShareGroupStateSummaryResponseTopicPartition()
				sp.Partition = rp.Partition
				s, err := ops[i][j].wait(ctx)
				sp.ErrorCode, sp.ErrorMessage = c.errorFields(err)
				if err == nil {
					sp.StateEpoch, sp.LeaderEpoch, sp.StartOffset = s.StateEpoch, s.LeaderEpoch, s.StartOffset
					if s.initialized() {
						sp.DeliveryCompleteCount = int32(min(s.deliveryComplete(), 1<<31-1))
					}
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}

// errorFields returns the error code and message of a partition's
// outcome; one the protocol does not name is logged and answered
// UNKNOWN_SERVER_ERROR.
func (c *Coordinator) errorFields(err error) (int16, *string) {
	code := codeOf(err)
	if code == nil {
		return 0, nil
	}
	msg := err.Error()
	if code == kerr.UnknownServerError {
		c.logger.Warn("share state request failed", zap.Error(err))
		return code.Code, nil
	}
	return code.Code, &msg
}
