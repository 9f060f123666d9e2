package wire

// ReadShareGroupState (key 84), versions 0-0.
//
// Sent by a share-partition's leader when it loads the share-partition:
// the state epoch, start offset and in-flight batches. A leader epoch
// above the stored one is stored (a record is committed before the
// answer), so that the previous leader's later writes are fenced; -1
// neither fences nor is stored. A key never initialized answers state
// epoch -1 and start offset -1.
//
// Errors per partition: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
// FENCED_LEADER_EPOCH (a leader epoch below the stored one),
// INVALID_REQUEST, REQUEST_TIMED_OUT.
//
// Deviations: no authorisation (Kafka requires ClusterAction).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleReadShareGroupState(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return finishShareState(s.shareState.ReadShareGroupState(kreq.(*kmsg.ReadShareGroupStateRequest)))
}
