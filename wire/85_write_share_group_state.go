package wire

// WriteShareGroupState (key 85), versions 0-1.
//
// Sent by a share-partition's leader for every durable change: the
// batches given replace the states of their offset ranges, a start
// offset other than -1 moves the start and drops what lies before it. The
// answer comes once the snapshot record is committed.
//
// Errors per partition: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
// FENCED_STATE_EPOCH (another state epoch, or a key not initialized),
// FENCED_LEADER_EPOCH (a leader epoch below the stored one),
// INVALID_REQUEST (batches unsorted, overlapping, empty, in state
// Acquired or with a negative delivery count), REQUEST_TIMED_OUT.
//
// Version notes: v1 adds DeliveryCompleteCount, which is
// ignored: ReadShareGroupStateSummary computes it from the batches.
//
// Deviations: no authorisation (Kafka requires ClusterAction).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleWriteShareGroupState(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return finishShareState(s.shareState.WriteShareGroupState(kreq.(*kmsg.WriteShareGroupStateRequest)))
}
