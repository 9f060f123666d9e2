package share

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/consumergroup/share/sharetest"
	"github.com/sluice-io/sluice/consumergroup/sharestate"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication/configs"
)

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
	// fail, when set, is returned by every write.
	fail error
}

func (d *memDeadLetters) WriteDeadLetters(_ context.Context, topic string, letters []DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.topic = topic
	d.letters = append(d.letters, letters...)
	return nil
}

// testManager is a Manager on node 1 over a fake clock (far from now, so
// real timers armed for its deadlines never fire in a test).
type testManager struct {
	*Manager
	clock     *fakeClock
	persister *sharetest.Persister
	dead      *memDeadLetters
	data      *fakePartition
	target    Target
}

func newTestManager(t *testing.T, cfg configs.ShareGroup) *testManager {
	t.Helper()
	tm := &testManager{
		clock:     &fakeClock{now: time.Now().Add(1000 * time.Hour)},
		persister: sharetest.NewPersister(),
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
