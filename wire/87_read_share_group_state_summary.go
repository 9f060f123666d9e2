package wire

// ReadShareGroupStateSummary (key 87), versions 0-1.
//
// Sent by the group coordinator for DescribeShareGroupOffsets: the state
// epoch, leader epoch and start offset, without the batches, fencing no
// one (the request's leader epoch is ignored). A key never initialized
// answers state epoch -1 and start offset -1.
//
// Errors per partition: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
// INVALID_REQUEST, REQUEST_TIMED_OUT.
//
// Version notes: v1 adds DeliveryCompleteCount: the offsets at
// or after the start offset acknowledged or archived (-1 for a key not
// initialized).
//
// Deviations: no authorisation (Kafka requires ClusterAction).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleReadShareGroupStateSummary(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return finishShareState(s.shareState.ReadShareGroupStateSummary(kreq.(*kmsg.ReadShareGroupStateSummaryRequest)))
}
