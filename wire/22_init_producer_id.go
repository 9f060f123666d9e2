package wire

// InitProducerId (key 22), versions 0-5.
//
// Hands an idempotent producer a new producer id with epoch 0. Ids come
// from the cluster's allocator and are never reused, across restarts too.
// A producer that already has an id and asks again (v3+, KIP-360, after
// UNKNOWN_PRODUCER_ID or a sequence error) gets a fresh id, as Kafka does
// for producers without a transactional id.
//
// Deviations: transactional producers (a transactional id) are refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED until transactions exist.
//
// Version notes: v1 throttle; v2 flexible; v3 ProducerID/ProducerEpoch in
// the request (KIP-360); v4 PRODUCER_FENCED; v5 (KIP-890) is the same.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleInitProducerID(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return reply{resp: resp}
	}
	id, err := s.cluster.AllocateProducerID(ctx)
	if err != nil {
		resp.ErrorCode = s.errorCode(err)
		return reply{resp: resp}
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return reply{resp: resp}
}
