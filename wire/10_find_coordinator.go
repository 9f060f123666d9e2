package wire

// FindCoordinator (key 10), versions 0-6.
//
// Answers which broker coordinates a group: the leader of the group's
// __consumer_offsets partition (on a single node, this one), with its
// advertised address; COORDINATOR_NOT_AVAILABLE while that partition has
// no known leader or its leader is a broker Metadata leaves out (held down
// by the failure detector), so clients retry instead of dialling a dead
// node. The group coordinator (package consumergroup) answers.
// The coordinator named then loads the partition on the group's first
// request, answering COORDINATOR_LOAD_IN_PROGRESS until done, and a node
// that no longer leads it answers NOT_COORDINATOR: clients look again.
//
// Transactional ids (key type 1) are answered by the transaction
// coordinator (package consumergroup/txn) the same way, for the leader of
// the id's __transaction_state partition. The key type is per request, so
// a batch (v4+) is answered by one coordinator or the other.
//
// Share-partition keys (key type 2, "group:topicId:partition") are
// answered by the share coordinator (package consumergroup/sharestate)
// the same way, for the leader of the key's __share_group_state
// partition; only brokers send them.
//
// Version notes: v1 key type and error message; v2 same as v1; v3
// flexible; v4 batched keys (KIP-699); v5 TRANSACTION_ABORTABLE (KIP-890);
// v6 share group keys (KIP-932).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleFindCoordinator(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	if req.CoordinatorType == 1 && s.txns != nil {
		return reply{resp: s.txns.FindCoordinator(ctx, req)}
	}
	if req.CoordinatorType == 2 && s.shareState != nil {
		return reply{resp: s.shareState.FindCoordinator(ctx, req)}
	}
	return reply{resp: s.groups.FindCoordinator(ctx, req)}
}
