package txn

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
)

const testID = "payments-tx"

// fakeMarkers is a MarkerWriter that records the markers written and can
// be made to fail or to block.
type fakeMarkers struct {
	mu      sync.Mutex
	written []writtenMarker
	// fail, while set, makes every write fail.
	fail bool
	// gate, if set, is waited on before each write.
	gate chan struct{}
	// calls counts WriteTxnMarkers calls.
	calls atomic.Int64
}

type writtenMarker struct {
	marker partition.TxnMarker
	tp     TopicPartition
}

func (f *fakeMarkers) WriteTxnMarkers(ctx context.Context, m partition.TxnMarker, partitions []TopicPartition) map[TopicPartition]error {
	f.calls.Add(1)
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail || ctx.Err() != nil {
		out := map[TopicPartition]error{}
		for _, tp := range partitions {
			out[tp] = kerr.NotLeaderForPartition
		}
		return out
	}
	for _, tp := range partitions {
		f.written = append(f.written, writtenMarker{m, tp})
	}
	return nil
}

func (f *fakeMarkers) markers() []writtenMarker {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]writtenMarker(nil), f.written...)
}

func (f *fakeMarkers) setFail(fail bool) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

// clock is a settable clock.
type clock struct{ now atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.now.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *clock) advance(d time.Duration) { c.now.Add(int64(d)) }

// harness is a single-node cluster with topics "t1" (3 partitions), a
// coordinator with a fake marker writer and a fake clock.
type harness struct {
	t       *testing.T
	dir     string
	cl      *replication.Cluster
	c       *Coordinator
	cfg     Config
	markers *fakeMarkers
	clock   *clock
	nextPID atomic.Int64
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.StateTopicPartitions = 4
	return cfg
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), cfg: cfg, markers: &fakeMarkers{}, clock: newClock()}
	h.nextPID.Store(1000)
	h.cl = openCluster(t, h.dir)
	for _, topic := range []string{"t1", "__consumer_offsets"} {
		if _, err := h.cl.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: topic, Partitions: 3, ReplicationFactor: -1}); err != nil {
			t.Fatal(err)
		}
	}
	h.open()
	return h
}

func openCluster(t *testing.T, dir string) *replication.Cluster {
	t.Helper()
	cfg := replication.DefaultConfig()
	cfg.DataDir = dir
	cl, err := replication.Open(cfg, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(context.Background()) })
	return cl
}

// open starts a coordinator on h.cl.
func (h *harness) open() {
	h.t.Helper()
	c, err := New(h.cl, h.cfg, Options{Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	c.SetMarkerWriter(h.markers)
	h.c = c
	h.t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			h.t.Error(err)
		}
	})
}

// restart closes the coordinator and the cluster and opens both again
// on the same data.
func (h *harness) restart() {
	h.t.Helper()
	if err := h.c.Close(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	if err := h.cl.Close(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.cl = openCluster(h.t, h.dir)
	h.open()
}

func (h *harness) allocate(context.Context) (int64, error) { return h.nextPID.Add(1), nil }

func (h *harness) init(version int16, timeoutMillis int32, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = version
	id := testID
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = timeoutMillis
	req.ProducerID, req.ProducerEpoch = pid, epoch
	return h.c.InitProducerID(context.Background(), req, h.allocate)
}

// mustInit inits testID (v4, no KIP-360 fields) and returns its producer.
func (h *harness) mustInit() (int64, int16) {
	h.t.Helper()
	resp := h.init(4, 60000, -1, -1)
	if resp.ErrorCode != 0 {
		h.t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// add adds partitions of t1 (v3) and returns each partition's code.
func (h *harness) add(version int16, pid int64, epoch int16, topic string, partitions ...int32) []int16 {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = testID, pid, epoch
	req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: partitions}}
	resp := h.c.AddPartitionsToTxn(context.Background(), req)
	var codes []int16
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			codes = append(codes, p.ErrorCode)
		}
	}
	return codes
}

func (h *harness) end(version int16, pid int64, epoch int16, commit bool) int16 {
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = testID, pid, epoch, commit
	return h.c.EndTxn(context.Background(), req, h.allocate).ErrorCode
}

// end2 ends testID's transaction with EndTxn v5 (transaction version 2)
// and returns the response.
func (h *harness) end2(pid int64, epoch int16, commit bool) *kmsg.EndTxnResponse {
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = 5
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = testID, pid, epoch, commit
	return h.c.EndTxn(context.Background(), req, h.allocate)
}

func (h *harness) describe() kmsg.DescribeTransactionsResponseTransactionState {
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{testID}
	return h.c.DescribeTransactions(context.Background(), req).TransactionStates[0]
}

// waitState waits (bounded) until testID is in state.
func (h *harness) waitState(state string) kmsg.DescribeTransactionsResponseTransactionState {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := h.describe()
		if d.ErrorCode == 0 && d.State == state {
			return d
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("transaction state %q (code %d), want %q", d.State, d.ErrorCode, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func codes(cs ...*kerr.Error) []int16 {
	out := make([]int16, len(cs))
	for i, c := range cs {
		out[i] = c.Code
	}
	return out
}
