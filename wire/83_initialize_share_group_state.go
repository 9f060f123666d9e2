package wire

// InitializeShareGroupState (key 83), versions 0-0.
//
// Sent by the group coordinator to the share coordinator of each
// share-partition (KIP-932): set its state epoch and start offset (-1:
// the partition leader picks it on first read) and drop its in-flight
// batches. Answered by the share coordinator (package
// consumergroup/sharestate) once the record is committed in
// __share_group_state.
//
// Errors per partition: NOT_COORDINATOR (this node does not lead the
// key's __share_group_state partition), COORDINATOR_LOAD_IN_PROGRESS,
// FENCED_STATE_EPOCH (a state epoch not above the stored one; repeating
// the initialization that is stored succeeds), INVALID_REQUEST (empty
// group, zero topic id, negative partition, epoch or start offset below
// -1), REQUEST_TIMED_OUT (not committed within 30 s).
//
// Deviations: no authorisation (Kafka requires ClusterAction).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleInitializeShareGroupState(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return finishShareState(s.shareState.InitializeShareGroupState(kreq.(*kmsg.InitializeShareGroupStateRequest)))
}
