package wire

// DeleteShareGroupState (key 86), versions 0-0.
//
// Sent by the group coordinator when a share group, or its offsets for a
// topic, are deleted: a tombstone in __share_group_state. Deleting a key
// with no state succeeds without a record.
//
// Errors per partition: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
// INVALID_REQUEST, REQUEST_TIMED_OUT.
//
// Deviations: no authorisation (Kafka requires ClusterAction).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteShareGroupState(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	return finishShareState(s.shareState.DeleteShareGroupState(kreq.(*kmsg.DeleteShareGroupStateRequest)))
}
