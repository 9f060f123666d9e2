// Package sharetest holds test doubles of the share-group packages: an
// in-memory sharestate.Persister for tests of consumergroup/share and wire
// that run without a share coordinator.
package sharetest

import (
	"context"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/consumergroup/sharestate"
)

// Persister is an in-memory sharestate.Persister with the share
// coordinator's semantics (fencing by state epoch and leader epoch), for
// tests. Safe for concurrent use.
type Persister struct {
	// Mu guards the fields below; a test holds it to set Fail.
	Mu     sync.Mutex
	states map[sharestate.Key]*sharestate.State
	// Writes counts the successful writes, Reads the reads.
	Writes, Reads int
	// Fail, when set, is returned by the next Write (then cleared).
	Fail error
}

var _ sharestate.Persister = (*Persister)(nil)

// NewPersister returns an empty Persister.
func NewPersister() *Persister {
	return &Persister{states: make(map[sharestate.Key]*sharestate.State)}
}

// Initialize implements sharestate.Persister.
// Initialize implements sharestate.Persister.
func (p *Persister) Initialize(_ context.Context, key sharestate.Key, stateEpoch int32, start int64) error {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	old := p.states[key]
	if old != nil && stateEpoch <= old.StateEpoch {
		return kerr.FencedStateEpoch
	}
	leader := int32(-1)
	if old != nil {
		leader = old.LeaderEpoch
	}
	p.states[key] = &sharestate.State{StateEpoch: stateEpoch, LeaderEpoch: leader, StartOffset: start}
	return nil
}

// Read implements sharestate.Persister.
// Read implements sharestate.Persister.
func (p *Persister) Read(_ context.Context, key sharestate.Key, leaderEpoch int32) (sharestate.State, error) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	p.Reads++
	st := p.states[key]
	if st == nil {
		return sharestate.State{StateEpoch: -1, LeaderEpoch: -1, StartOffset: -1}, nil
	}
	if leaderEpoch < st.LeaderEpoch {
		return sharestate.State{}, kerr.FencedLeaderEpoch
	}
	st.LeaderEpoch = leaderEpoch
	out := *st
	out.Batches = slices.Clone(st.Batches)
	return out, nil
}

// Write implements sharestate.Persister.
// Write implements sharestate.Persister.
func (p *Persister) Write(_ context.Context, key sharestate.Key, w sharestate.Write) error {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	if err := p.Fail; err != nil {
		p.Fail = nil
		return err
	}
	st := p.states[key]
	if st == nil || w.StateEpoch != st.StateEpoch {
		return kerr.FencedStateEpoch
	}
	if w.LeaderEpoch < st.LeaderEpoch {
		return kerr.FencedLeaderEpoch
	}
	p.Writes++
	st.LeaderEpoch = w.LeaderEpoch
	if w.StartOffset >= 0 {
		st.StartOffset = w.StartOffset
	}
	// Apply per offset, then rebuild runs: simple and obviously right.
	byOffset := make(map[int64]sharestate.Batch)
	for _, b := range st.Batches {
		for o := b.First; o <= b.Last; o++ {
			byOffset[o] = sharestate.Batch{First: o, Last: o, State: b.State, DeliveryCount: b.DeliveryCount}
		}
	}
	for _, b := range w.Batches {
		for o := b.First; o <= b.Last; o++ {
			byOffset[o] = sharestate.Batch{First: o, Last: o, State: b.State, DeliveryCount: b.DeliveryCount}
		}
	}
	var offsets []int64
	for o, b := range byOffset {
		if o >= st.StartOffset && (b.State != sharestate.Available || b.DeliveryCount != 0) {
			offsets = append(offsets, o)
		}
	}
	slices.Sort(offsets)
	st.Batches = st.Batches[:0]
	for _, o := range offsets {
		b := byOffset[o]
		if n := len(st.Batches); n > 0 && st.Batches[n-1].Last == o-1 && st.Batches[n-1].State == b.State && st.Batches[n-1].DeliveryCount == b.DeliveryCount {
			st.Batches[n-1].Last = o
			continue
		}
		st.Batches = append(st.Batches, b)
	}
	return nil
}

// ReadSummary implements sharestate.Persister.
// ReadSummary implements sharestate.Persister.
func (p *Persister) ReadSummary(_ context.Context, key sharestate.Key) (sharestate.Summary, error) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	st := p.states[key]
	if st == nil {
		return sharestate.Summary{StateEpoch: -1, LeaderEpoch: -1, StartOffset: -1, DeliveryCompleteCount: -1}, nil
	}
	var complete int32
	for _, b := range st.Batches {
		if b.State == sharestate.Acknowledged || b.State == sharestate.Archived {
			complete += int32(b.Last - b.First + 1)
		}
	}
	return sharestate.Summary{StateEpoch: st.StateEpoch, LeaderEpoch: st.LeaderEpoch, StartOffset: st.StartOffset, DeliveryCompleteCount: complete}, nil
}

// Delete implements sharestate.Persister.
// Delete implements sharestate.Persister.
func (p *Persister) Delete(_ context.Context, key sharestate.Key) error {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	delete(p.states, key)
	return nil
}

// State returns a copy of key's stored state; key must be stored.
func (p *Persister) State(key sharestate.Key) sharestate.State {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	st := *p.states[key]
	st.Batches = slices.Clone(st.Batches)
	return st
}
