package wire

// DeleteRecords (key 21), versions 0-2.
//
// Moves each partition's log start offset up to the given offset (-1 means
// the high watermark), durably, and deletes the segments wholly below it;
// LowWatermark answers the new log start offset. Records below it are gone:
// ListOffsets earliest returns it and a fetch below it is
// OFFSET_OUT_OF_RANGE. An offset above the high watermark, or below -1, is
// OFFSET_OUT_OF_RANGE; one below the current log start changes nothing.
// Internal topics (__consumer_offsets) are INVALID_TOPIC_EXCEPTION, as in
// Kafka. The request's timeout is not needed: the change is done before
// the response, on this single node.
//
// Version notes: v1 is v0 (throttle behaviour, KIP-219); v2 flexible.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteRecords(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		topic, known := s.cluster.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			var err error
			switch {
			case !known:
				err = kerr.UnknownTopicOrPartition
			case topic.Internal():
				err = fmt.Errorf("topic %s is internal; its records cannot be deleted: %w", rt.Topic, kerr.InvalidTopicException)
			case rp.Offset < -1:
				err = kerr.OffsetOutOfRange
			default:
				p, perr := s.cluster.Partition(rt.Topic, rp.Partition)
				if perr != nil {
					err = perr
					break
				}
				sp.LowWatermark, err = p.DeleteRecordsBefore(rp.Offset)
			}
			if err != nil {
				sp.ErrorCode = s.errorCode(err)
				sp.LowWatermark = -1
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return reply{resp: resp}
}
