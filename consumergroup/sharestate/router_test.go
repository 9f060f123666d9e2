package sharestate

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// loopPeers is Peers that answers a request to node remoteNode with
// coordinator c after a round trip through the wire encoding, failing
// the first failures calls with a transport error, and answering
// NOT_COORDINATOR for any other node.
type loopPeers struct {
	c        *Coordinator
	failures atomic.Int64
	// hangs is the number of first calls (after failures) that answer
	// nothing until ctx ends, as a frozen node.
	hangs atomic.Int64
	calls atomic.Int64
}

const remoteNode = 7

func (p *loopPeers) Request(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error) {
	p.calls.Add(1)
	if p.failures.Add(-1) >= 0 {
		return nil, io.ErrUnexpectedEOF
	}
	if p.hangs.Add(-1) >= 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	// What a peer receives: the request as encoded on the wire.
	decoded := kmsg.RequestForKey(req.Key())
	decoded.SetVersion(req.GetVersion())
	if err := decoded.ReadFrom(req.AppendTo(nil)); err != nil {
		return nil, err
	}
	if node != remoteNode {
		// Another node's coordinator does not hold the key.
		return newNotCoordinator(decoded), nil
	}
	var resp kmsg.Response
	switch r := decoded.(type) {
	case *kmsg.InitializeShareGroupStateRequest:
		resp = p.c.InitializeShareGroupState(r)(ctx)
	case *kmsg.ReadShareGroupStateRequest:
		resp = p.c.ReadShareGroupState(r)(ctx)
	case *kmsg.WriteShareGroupStateRequest:
		resp = p.c.WriteShareGroupState(r)(ctx)
	case *kmsg.DeleteShareGroupStateRequest:
		resp = p.c.DeleteShareGroupState(r)(ctx)
	case *kmsg.ReadShareGroupStateSummaryRequest:
		resp = p.c.ReadShareGroupStateSummary(r)(ctx)
	}
	// And the response as encoded on the wire.
	out := decoded.ResponseKind()
	out.SetVersion(resp.GetVersion())
	if err := out.ReadFrom(resp.AppendTo(nil)); err != nil {
		return nil, err
	}
	return out, nil
}

// newNotCoordinator answers req with NOT_COORDINATOR for its one
// partition.
func newNotCoordinator(req kmsg.Request) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.WriteShareGroupStateRequest:
		resp := r.ResponseKind().(*kmsg.WriteShareGroupStateResponse)
		st := kmsg.NewWriteShareGroupStateResponseTopic()
		st.TopicID = r.Topics[0].TopicID
		sp := kmsg.NewWriteShareGroupStateResponseTopicPartition()
		sp.Partition, sp.ErrorCode = r.Topics[0].Partitions[0].Partition, kerr.NotCoordinator.Code
		st.Partitions = append(st.Partitions, sp)
		resp.Topics = append(resp.Topics, st)
		return resp
	}
	panic("newNotCoordinator: only writes")
}

// remoteRouter returns a Router of h's coordinator that believes node
// remoteNode (or node) coordinates every key, so every call goes through
// peers.
func remoteRouter(h *harness, peers Peers, node int32) *Router {
	r := NewRouter(h.c, peers, RouterOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	r.leader = func(Key) int32 { return node }
	return r
}

func TestRouterRemote(t *testing.T) {
	h := newHarness(t)
	peers := &loopPeers{c: h.c}
	peers.failures.Store(3)
	r := remoteRouter(h, peers, remoteNode)
	if err := r.Initialize(ctx(t), keyA, 1, 0); err != nil {
		t.Fatalf("initialize through a peer failing 3 times: %v", err)
	}
	if got := peers.calls.Load(); got != 4 {
		t.Fatalf("%d calls, want 3 failed and 1 answered", got)
	}
	w := Write{StateEpoch: 1, LeaderEpoch: 2, StartOffset: -1, Batches: []Batch{{First: 0, Last: 4, State: Archived, DeliveryCount: 5}}}
	if err := r.Write(ctx(t), keyA, w); err != nil {
		t.Fatal(err)
	}
	s, err := r.Read(ctx(t), keyA, 2)
	if err != nil || s.StateEpoch != 1 || s.LeaderEpoch != 2 || len(s.Batches) != 1 || s.Batches[0] != w.Batches[0] {
		t.Fatalf("read through a peer: %+v, %v", s, err)
	}
	// The loop encodes at the request's version, 0 (kgo sends the highest
	// both sides know): no DeliveryCompleteCount.
	if sum, err := r.ReadSummary(ctx(t), keyA); err != nil || sum != (Summary{StateEpoch: 1, LeaderEpoch: 2, StartOffset: 0, DeliveryCompleteCount: -1}) {
		t.Fatalf("summary through a peer: %+v, %v", sum, err)
	}
	// The coordinator's verdicts come back as kerr values.
	w.StateEpoch = 0
	if err := r.Write(ctx(t), keyA, w); !errors.Is(err, kerr.FencedStateEpoch) {
		t.Fatalf("write of an old state epoch through a peer: %v, want FENCED_STATE_EPOCH", err)
	}
	w.StateEpoch, w.LeaderEpoch = 1, 1
	if err := r.Write(ctx(t), keyA, w); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("write of an old leader through a peer: %v, want FENCED_LEADER_EPOCH", err)
	}
	if err := r.Delete(ctx(t), keyA); err != nil {
		t.Fatal(err)
	}
	if s, err := h.r.Read(ctx(t), keyA, 2); err != nil || s.StateEpoch != -1 {
		t.Fatalf("local read after a delete through a peer: %+v, %v", s, err)
	}
}

// TestRouterRetriesNotCoordinator checks that NOT_COORDINATOR from a
// peer is retried until ctx ends, and then returned.
func TestRouterRetriesNotCoordinator(t *testing.T) {
	h := newHarness(t)
	peers := &loopPeers{c: h.c}
	r := remoteRouter(h, peers, remoteNode+1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := r.Write(ctx, keyA, Write{StateEpoch: 0, StartOffset: -1})
	if !errors.Is(err, kerr.NotCoordinator) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write answered NOT_COORDINATOR until the deadline: %v", err)
	}
	if peers.calls.Load() < 3 {
		t.Fatalf("only %d calls before the deadline: not retried", peers.calls.Load())
	}
}

// TestRouterGivesUpOnAFrozenPeer checks that a request a peer never
// answers is abandoned after the attempt timeout and retried.
func TestRouterGivesUpOnAFrozenPeer(t *testing.T) {
	h := newHarness(t)
	peers := &loopPeers{c: h.c}
	peers.hangs.Store(2)
	r := NewRouter(h.c, peers, RouterOptions{MinBackoff: time.Millisecond, AttemptTimeout: 50 * time.Millisecond})
	r.leader = func(Key) int32 { return remoteNode }
	if err := r.Initialize(ctx(t), keyA, 0, 0); err != nil {
		t.Fatalf("initialize through a peer frozen for 2 attempts: %v", err)
	}
	if got := peers.calls.Load(); got != 3 {
		t.Fatalf("%d calls, want 2 abandoned and 1 answered", got)
	}
}
