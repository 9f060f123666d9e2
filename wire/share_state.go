package wire

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/sharestate"
)

// ShareStateCoordinator is what the wire layer needs of the share
// coordinator (package consumergroup/sharestate): one method per
// share-state API (keys 83-87, sent by share-partition leaders on other
// nodes). Each begins the request's operations at once, in request order
// (the handler runs on the connection's reader, so a connection's
// pipelined writes apply in order), and returns a function that waits for
// their commits and returns the response of the request's version, never
// nil, with outcomes as error codes inside; the handler calls it from
// reply.finish, so the waits overlap with the next requests.
// *sharestate.Coordinator implements it; it must be safe for concurrent
// use.
type ShareStateCoordinator interface {
	// FindCoordinator answers for share-partition keys (key type 2).
	FindCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse
	InitializeShareGroupState(req *kmsg.InitializeShareGroupStateRequest) func(context.Context) *kmsg.InitializeShareGroupStateResponse
	ReadShareGroupState(req *kmsg.ReadShareGroupStateRequest) func(context.Context) *kmsg.ReadShareGroupStateResponse
	WriteShareGroupState(req *kmsg.WriteShareGroupStateRequest) func(context.Context) *kmsg.WriteShareGroupStateResponse
	DeleteShareGroupState(req *kmsg.DeleteShareGroupStateRequest) func(context.Context) *kmsg.DeleteShareGroupStateResponse
	ReadShareGroupStateSummary(req *kmsg.ReadShareGroupStateSummaryRequest) func(context.Context) *kmsg.ReadShareGroupStateSummaryResponse
}

var _ ShareStateCoordinator = (*sharestate.Coordinator)(nil)

// shareStateTimeout bounds the wait for a share-state record's commit
// (the requests carry no timeout; Kafka's request.timeout.ms default).
const shareStateTimeout = 30 * time.Second

// finishShareState is the reply of a share-state request begun: finish
// waits for its commits, within shareStateTimeout.
func finishShareState[R kmsg.Response](finish func(context.Context) R) reply {
	return reply{finish: func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, shareStateTimeout)
		defer cancel()
		return finish(ctx)
	}}
}
