package consumergroup

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const testShareGroup = "orders-workers"

// memPersister is an in-memory ShareStateStore with the state store's
// fencing by state epoch; write stands for a data partition leader's
// write.
type memPersister struct {
	mu      sync.Mutex
	states  map[ShareStateKey]ShareStateSummary
	deleted []ShareStateKey
}

var _ ShareStateStore = (*memPersister)(nil)

func newMemPersister() *memPersister {
	return &memPersister{states: make(map[ShareStateKey]ShareStateSummary)}
}

func (p *memPersister) Initialize(ctx context.Context, key ShareStateKey, stateEpoch int32, startOffset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.states[key]; ok && s.StateEpoch >= stateEpoch {
		return kerr.FencedStateEpoch
	}
	p.states[key] = ShareStateSummary{StateEpoch: stateEpoch, LeaderEpoch: -1, StartOffset: startOffset}
	return nil
}

// write moves key's start offset if stateEpoch is the stored one.
func (p *memPersister) write(key ShareStateKey, stateEpoch int32, startOffset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.states[key]
	if !ok || s.StateEpoch != stateEpoch {
		return kerr.FencedStateEpoch
	}
	s.StartOffset = startOffset
	p.states[key] = s
	return nil
}

func (p *memPersister) ReadSummary(ctx context.Context, key ShareStateKey) (ShareStateSummary, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.states[key]
	if !ok {
		return ShareStateSummary{StateEpoch: -1, LeaderEpoch: -1, StartOffset: -1}, nil
	}
	return s, nil
}

func (p *memPersister) Delete(ctx context.Context, key ShareStateKey) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.states, key)
	p.deleted = append(p.deleted, key)
	return nil
}

// openShareCoordinator replaces h's coordinator with one using cfg and
// persister p.
func (h *harness) openShareCoordinator(cfg Config, p ShareStateStore) {
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
