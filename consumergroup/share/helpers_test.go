package share

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/consumergroup/sharestate"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication/configs"
)

// memPersister is an in-memory sharestate.Persister with the stored
// semantics: fencing by state epoch and leader epoch.
type memPersister struct {
	mu     sync.Mutex
	states map[sharestate.Key]*sharestate.State
	writes int
	// fail, when set, is returned by the next Write.
	fail error
}

var _ sharestate.Persister = (*memPersister)(nil)

func newMemPersister() *memPersister {
	return &memPersister{states: make(map[sharestate.Key]*sharestate.State)}
}

func (p *memPersister) Initialize(_ context.Context, key sharestate.Key, stateEpoch int32, start int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
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

func (p *memPersister) Read(_ context.Context, key sharestate.Key, leaderEpoch int32) (sharestate.State, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
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

func (p *memPersister) Write(_ context.Context, key sharestate.Key, w sharestate.Write) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.fail; err != nil {
		p.fail = nil
		return err
	}
	st := p.states[key]
	if st == nil || w.StateEpoch != st.StateEpoch {
		return kerr.FencedStateEpoch
	}
	if w.LeaderEpoch < st.LeaderEpoch {
		return kerr.FencedLeaderEpoch
	}
	p.writes++
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

func (p *memPersister) ReadSummary(_ context.Context, key sharestate.Key) (sharestate.Summary, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.states[key]
	if st == nil {
		return sharestate.Summary{StateEpoch: -1, LeaderEpoch: -1, StartOffset: -1}, nil
	}
	return sharestate.Summary{StateEpoch: st.StateEpoch, LeaderEpoch: st.LeaderEpoch, StartOffset: st.StartOffset}, nil
}

func (p *memPersister) Delete(_ context.Context, key sharestate.Key) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.states, key)
	return nil
}

// state returns key's stored state.
func (p *memPersister) state(key sharestate.Key) sharestate.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := *p.states[key]
	st.Batches = slices.Clone(st.Batches)
	return st
}

// fakePartition is a data partition of in-memory batches, led by node 1.
type fakePartition struct {
	mu      sync.Mutex
	batches [][]byte
	hwm     int64
	start   int64
	leader  int32
	epoch   int32
}

var _ DataPartition = (*fakePartition)(nil)

func newFakePartition() *fakePartition { return &fakePartition{leader: 1, epoch: 1} }

// produce appends a batch of n records with values "v<offset>".
func (f *fakePartition) produce(t *testing.T, n int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var b record.Builder
	for i := 0; i < n; i++ {
		o := f.hwm + int64(i)
		b.Add(1000+o, []byte(fmt.Sprintf("k%d", o)), []byte(fmt.Sprintf("v%d", o)), record.Header{Key: "h", Value: []byte("x")})
	}
	batch, err := b.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	log.SetBaseOffset(batch, f.hwm)
	f.batches = append(f.batches, batch)
	f.hwm += int64(n)
}

func (f *fakePartition) Read(dst []byte, req partition.ReadRequest) (partition.ReadResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res := partition.ReadResult{HighWatermark: f.hwm, LastStableOffset: f.hwm, LogStartOffset: f.start}
	if req.Offset < f.start || req.Offset > f.hwm {
		return res, kerr.OffsetOutOfRange
	}
	for _, b := range f.batches {
		h, err := log.ParseBatchHeader(b)
		if err != nil {
			return res, err
		}
		if h.LastOffset() < req.Offset {
			continue
		}
		if len(dst) > 0 && len(dst)+len(b) > req.MaxBytes {
			break
		}
		if len(dst) == 0 && len(b) > req.MaxBytes && !req.MinOneBatch {
			break
		}
		dst = append(dst, b...)
	}
	res.Records = dst
	return res, nil
}

func (f *fakePartition) Offsets() partition.Offsets {
	f.mu.Lock()
	defer f.mu.Unlock()
	return partition.Offsets{LogStart: f.start, HighWatermark: f.hwm, LastStable: f.hwm, LogEnd: f.hwm}
}

func (f *fakePartition) Leader() (int32, int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader, f.epoch
}

func (f *fakePartition) OffsetForTimestamp(ts int64) (int64, int64, bool, error) {
	return 0, 0, false, nil
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// groupConfigs serves one config to every group.
type groupConfigs struct{ cfg configs.ShareGroup }

func (g groupConfigs) ShareGroupConfig(string) configs.ShareGroup { return g.cfg }

// memDeadLetters records the dead letters written.
type memDeadLetters struct {
	mu      sync.Mutex
	topic   string
	letters []DeadLetter
}

func (d *memDeadLetters) WriteDeadLetters(_ context.Context, topic string, letters []DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.topic = topic
	d.letters = append(d.letters, letters...)
	return nil
}

// testManager is a Manager on node 1 over a fake clock (far from now, so
// real timers armed for its deadlines never fire in a test).
type testManager struct {
	*Manager
	clock     *fakeClock
	persister *memPersister
	dead      *memDeadLetters
	data      *fakePartition
	target    Target
}

func newTestManager(t *testing.T, cfg configs.ShareGroup) *testManager {
	t.Helper()
	tm := &testManager{
		clock:     &fakeClock{now: time.Now().Add(1000 * time.Hour)},
		persister: newMemPersister(),
		dead:      &memDeadLetters{},
		data:      newFakePartition(),
	}
	tm.Manager = NewManager(DefaultConfig(), 1, tm.persister, groupConfigs{cfg}, Options{DeadLetters: tm.dead, Now: tm.clock.Now})
	t.Cleanup(tm.Close)
	tm.target = Target{TopicID: [16]byte{1}, Topic: "t", Partition: 0, Data: tm.data}
	return tm
}

func (tm *testManager) key() sharestate.Key {
	return sharestate.Key{Group: "g", TopicID: tm.target.TopicID, Partition: 0}
}

func (tm *testManager) acquire(t *testing.T, member string, maxRecords int) []AcquiredRange {
	t.Helper()
	a, err := tm.Acquire(context.Background(), "g", member, tm.target, AcquireRequest{MaxRecords: maxRecords, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatalf("acquire for %s: %v", member, err)
	}
	return a.Ranges
}

func (tm *testManager) ack(t *testing.T, member string, first, last int64, typ AckType) error {
	t.Helper()
	return tm.Acknowledge(context.Background(), "g", member, tm.target, []AckBatch{{First: first, Last: last, Types: []AckType{typ}}}, true)
}
