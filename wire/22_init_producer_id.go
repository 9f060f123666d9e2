package wire

// InitProducerId (key 22), versions 0-5.
//
// Hands an idempotent producer a new producer id with epoch 0. Ids come
// from the cluster's allocator and are never reused, across restarts too.
// Each node hands out ids from a block reserved for it in the metadata; a
// node that is not the metadata leader gets its next block from the
// leader with AllocateProducerIds (67_allocate_producer_ids.go), so any
// node answers.
// A producer that already has an id and asks again (v3+, KIP-360, after
// UNKNOWN_PRODUCER_ID or a sequence error) gets a fresh id, as Kafka does
// for producers without a transactional id.
//
// A transactional producer (a transactional id) is answered by the
// transaction coordinator (package consumergroup/txn), which must be the
// id's coordinator (NOT_COORDINATOR otherwise): a new id gets a new
// producer id at epoch 0, a known one its epoch bumped (fencing the
// previous instance, aborting its ongoing transaction first), with
// transaction.timeout.ms checked against transaction.max.timeout.ms.
// Without a transaction coordinator it is refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
//
// Version notes: v1 throttle; v2 flexible; v3 ProducerID/ProducerEpoch in
// the request (KIP-360); v4 PRODUCER_FENCED; v5 (KIP-890) is the same.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

func handleInitProducerID(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		if s.txns == nil {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			return reply{resp: resp}
		}
		return reply{resp: s.txns.InitProducerID(ctx, req, s.allocateProducerID)}
	}
	id, err := s.allocateProducerID(ctx)
	if err != nil {
		resp.ErrorCode = s.errorCode(err)
		return reply{resp: resp}
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return reply{resp: resp}
}

// allocateProducerID hands out a producer id never handed out before.
func (s *Server) allocateProducerID(ctx context.Context) (int64, error) {
	return s.cluster.AllocateProducerID(ctx, s.producerIDBlock)
}

// producerIDBlock asks the metadata leader, node leader, for a block of
// producer ids for this node (replication.ProducerIDBlockFunc).
func (s *Server) producerIDBlock(ctx context.Context, leader int32) (replication.ProducerIDBlock, error) {
	if isForwarded(ctx) {
		return replication.ProducerIDBlock{}, kerr.NotController
	}
	ctx, cancel := s.forwardContext(ctx, 0)
	defer cancel()
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID = s.cluster.NodeID()
	kresp, err := s.forward(ctx, leader, req)
	if err != nil {
		return replication.ProducerIDBlock{}, fmt.Errorf("%w: %w", err, kerr.NotController)
	}
	resp := kresp.(*kmsg.AllocateProducerIDsResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return replication.ProducerIDBlock{}, fmt.Errorf("node %d refused a producer id block: %w", leader, err)
	}
	return replication.ProducerIDBlock{First: resp.ProducerIDStart, Size: resp.ProducerIDLen}, nil
}
