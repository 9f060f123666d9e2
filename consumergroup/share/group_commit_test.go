package share

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/consumergroup/share/sharetest"
	"github.com/sluice-io/sluice/consumergroup/sharestate"
)

// gatedPersister holds every Write until the test opens the gate, and
// tells it when one is waiting.
type gatedPersister struct {
	*sharetest.Persister
	entered chan struct{}
	gate    chan struct{}
}

func (p *gatedPersister) Write(ctx context.Context, key sharestate.Key, w sharestate.Write) error {
	p.entered <- struct{}{}
	<-p.gate
	return p.Persister.Write(ctx, key, w)
}

// TestAcknowledgementsGroupCommitted: while one acknowledgement's write
// is in flight, others on the same share-partition are applied without
// waiting for it and stored together by the next write: three
// acknowledgements, two writes, each answered only once stored.
func TestAcknowledgementsGroupCommitted(t *testing.T) {
	tm := newTestManager(t, earliest())
	gated := &gatedPersister{Persister: tm.persister, entered: make(chan struct{}, 4), gate: make(chan struct{})}
	tm.Manager.Close()
	tm.Manager = NewManager(DefaultConfig(), 1, gated, groupConfigs{earliest()}, Options{DeadLetters: tm.dead, Now: tm.clock.Now})
	t.Cleanup(tm.Close)
	tm.data.produce(t, 3)
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{0, 2, 1})

	var wg sync.WaitGroup
	errs := make([]error, 3)
	ack := func(i int) {
		defer wg.Done()
		errs[i] = tm.Acknowledge(context.Background(), "g", "m1", tm.target, []AckBatch{{First: int64(i), Last: int64(i), Types: []AckType{AckAccept}}}, false)
	}
	wg.Add(1)
	go ack(0)
	<-gated.entered // the first write is in flight
	wg.Add(2)
	go ack(1)
	go ack(2)
	sp := tm.partitions[tm.key()]
	deadline := time.Now().Add(10 * time.Second)
	for {
		sp.mu.Lock()
		changed := sp.changed
		sp.mu.Unlock()
		if changed == 3 {
			break // both later acknowledgements applied while the write is held
		}
		if time.Now().After(deadline) {
			t.Fatalf("acknowledgements applied while a write is in flight: %d of 3", changed)
		}
		time.Sleep(time.Millisecond) // state of goroutines under test: poll
	}
	close(gated.gate)
	<-gated.entered // the second write carries both
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("acknowledgement %d: %v", i, err)
		}
	}
	gated.Mu.Lock()
	writes := gated.Writes
	gated.Mu.Unlock()
	if writes != 2 {
		t.Fatalf("%d writes for 3 acknowledgements, want 2", writes)
	}
	if st := gated.State(tm.key()); st.StartOffset != 3 {
		t.Fatalf("stored start offset %d, want 3 (all accepted)", st.StartOffset)
	}
}
