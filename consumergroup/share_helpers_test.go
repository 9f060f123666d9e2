package consumergroup

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/sharestate"
)

const testShareGroup = "orders-workers"

// memPersister is an in-memory sharestate.Persister with the seam's
// fencing by state epoch.
type memPersister struct {
	mu      sync.Mutex
	states  map[sharestate.Key]sharestate.State
	deleted []sharestate.Key
}

var _ sharestate.Persister = (*memPersister)(nil)

func newMemPersister() *memPersister {
	return &memPersister{states: make(map[sharestate.Key]sharestate.State)}
}

func (p *memPersister) Initialize(ctx context.Context, key sharestate.Key, stateEpoch int32, startOffset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.states[key]; ok && s.StateEpoch >= stateEpoch {
		return kerr.FencedStateEpoch
	}
	p.states[key] = sharestate.State{StateEpoch: stateEpoch, LeaderEpoch: -1, StartOffset: startOffset}
	return nil
}

func (p *memPersister) Read(ctx context.Context, key sharestate.Key, leaderEpoch int32) (sharestate.State, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.states[key]
	if !ok {
		return sharestate.State{StateEpoch: -1, LeaderEpoch: -1, StartOffset: -1}, nil
	}
	return s, nil
}

func (p *memPersister) Write(ctx context.Context, key sharestate.Key, w sharestate.Write) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.states[key]
	if !ok || s.StateEpoch != w.StateEpoch {
		return kerr.FencedStateEpoch
	}
	if w.StartOffset >= 0 {
		s.StartOffset = w.StartOffset
	}
	p.states[key] = s
	return nil
}

func (p *memPersister) ReadSummary(ctx context.Context, key sharestate.Key) (sharestate.Summary, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.states[key]
	if !ok {
		return sharestate.Summary{StateEpoch: -1, LeaderEpoch: -1, StartOffset: -1}, nil
	}
	return sharestate.Summary{StateEpoch: s.StateEpoch, LeaderEpoch: s.LeaderEpoch, StartOffset: s.StartOffset}, nil
}

func (p *memPersister) Delete(ctx context.Context, key sharestate.Key) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.states, key)
	p.deleted = append(p.deleted, key)
	return nil
}

// openShareCoordinator replaces h's coordinator with one using cfg and
// persister p.
func (h *harness) openShareCoordinator(cfg Config, p sharestate.Persister) {
	h.t.Helper()
	if err := h.c.Close(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	c, err := New(h.cl, cfg, Options{SharePersister: p})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close(context.Background()) })
	h.c = c
}

// shareHeartbeat sends a v1 ShareGroupHeartbeat; topics nil leaves the
// subscription unchanged.
func (h *harness) shareHeartbeat(member string, epoch int32, topics ...string) *kmsg.ShareGroupHeartbeatResponse {
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.Version = 1
	req.GroupID, req.MemberID, req.MemberEpoch = testShareGroup, member, epoch
	if topics != nil {
		req.SubscribedTopicNames = topics
	}
	return h.c.ShareGroupHeartbeat(WithClient(context.Background(), "worker", "/127.0.0.1"), req)
}

func (h *harness) shareDescribe(group string) kmsg.ShareGroupDescribeResponseGroup {
	req := kmsg.NewPtrShareGroupDescribeRequest()
	req.Version = 1
	req.GroupIDs = []string{group}
	return h.c.ShareGroupDescribe(context.Background(), req).Groups[0]
}
