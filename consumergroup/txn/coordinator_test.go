package txn

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTransitions(t *testing.T) {
	for _, tc := range []struct {
		from, to kmsg.TransactionState
		ok       bool
	}{
		{stateEmpty, stateOngoing, true},
		{stateOngoing, statePrepareCommit, true},
		{statePrepareCommit, stateCompleteCommit, true},
		{stateOngoing, statePrepareAbort, true},
		{statePrepareAbort, stateCompleteAbort, true},
		{stateCompleteCommit, stateOngoing, true},
		{stateCompleteAbort, stateEmpty, true},
		{stateCompleteCommit, stateDead, true},
		{stateEmpty, statePrepareCommit, false},
		{statePrepareCommit, stateCompleteAbort, false},
		{statePrepareAbort, stateOngoing, false},
		{stateOngoing, stateDead, false},
		{stateOngoing, stateEmpty, false},
		{stateDead, stateOngoing, false},
	} {
		t.Run(fmt.Sprintf("%s->%s", tc.from, tc.to), func(t *testing.T) {
			if got := transitionAllowed(tc.from, tc.to); got != tc.ok {
				t.Errorf("allowed = %v, want %v", got, tc.ok)
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	m := &metadata{
		id: testID, producerID: 42, producerEpoch: 7, lastProducerID: -1, lastProducerEpoch: -1, nextProducerID: -1,
		timeout: 90 * time.Second, state: stateOngoing,
		partitions: map[TopicPartition]struct{}{{"b", 1}: {}, {"a", 2}: {}, {"a", 0}: {}},
		startTime:  time.UnixMilli(1000), lastUpdate: time.UnixMilli(2000),
	}
	id, got, err := decodeRecord(metadataKey(m.id), metadataValue(m))
	if err != nil || id != testID {
		t.Fatalf("decode: %q %v", id, err)
	}
	if got.producerID != 42 || got.producerEpoch != 7 || got.timeout != m.timeout || got.state != stateOngoing ||
		!got.startTime.Equal(m.startTime) || !got.lastUpdate.Equal(m.lastUpdate) ||
		!slices.Equal(got.sortedPartitions(), []TopicPartition{{"a", 0}, {"a", 2}, {"b", 1}}) {
		t.Errorf("decoded %+v, want %+v", got, m)
	}
	if _, tomb, err := decodeRecord(metadataKey(testID), nil); err != nil || tomb != nil {
		t.Errorf("tombstone decoded as %+v, %v", tomb, err)
	}
	// An offset commit key (version 1) is not a transaction record.
	if _, _, err := decodeRecord([]byte{0, 1, 0, 0}, nil); err == nil {
		t.Error("a version 1 key decoded")
	}
}

func TestInitProducerID(t *testing.T) {
	h := newHarness(t, testConfig())
	pid, epoch := h.mustInit()
	if epoch != 0 || pid <= 1000 {
		t.Fatalf("first init: %d/%d", pid, epoch)
	}
	pid2, epoch2 := h.mustInit()
	if pid2 != pid || epoch2 != 1 {
		t.Fatalf("second init: %d/%d, want %d/1", pid2, epoch2, pid)
	}
	for _, tc := range []struct {
		name    string
		version int16
		timeout int32
		pid     int64
		epoch   int16
		want    int16
	}{
		{"timeout above max", 4, int32(h.cfg.MaxTimeout/time.Millisecond) + 1, -1, -1, kerr.InvalidTransactionTimeout.Code},
		{"zero timeout", 4, 0, -1, -1, kerr.InvalidTransactionTimeout.Code},
		{"kip-360 other producer id v4", 4, 1000, pid + 99, 0, kerr.ProducerFenced.Code},
		{"kip-360 other producer id v3", 3, 1000, pid + 99, 0, kerr.InvalidProducerEpoch.Code},
		{"kip-360 epoch neither current nor last", 4, 1000, pid, 5, kerr.ProducerFenced.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.init(tc.version, tc.timeout, tc.pid, tc.epoch); got.ErrorCode != tc.want || got.ProducerID != -1 {
				t.Errorf("code %v pid %d, want %v", kerr.ErrorForCode(got.ErrorCode), got.ProducerID, kerr.ErrorForCode(tc.want))
			}
		})
	}
	// KIP-360 with the current producer bumps; retrying with the
	// previous epoch gets the same answer.
	resp := h.init(4, 1000, pid, 1)
	if resp.ErrorCode != 0 || resp.ProducerID != pid || resp.ProducerEpoch != 2 {
		t.Fatalf("kip-360 bump: %+v", resp)
	}
	resp = h.init(4, 1000, pid, 1)
	if resp.ErrorCode != 0 || resp.ProducerEpoch != 2 {
		t.Fatalf("kip-360 retry: %+v", resp)
	}
	empty := ""
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = &empty, 1000
	if got := h.c.InitProducerID(context.Background(), req, h.allocate); got.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("empty id: %v", kerr.ErrorForCode(got.ErrorCode))
	}
}

func TestEpochExhaustion(t *testing.T) {
	h := newHarness(t, testConfig())
	pid, _ := h.mustInit()
	h.c.mu.Lock()
	h.c.txns[testID].producerEpoch = math.MaxInt16 - 1
	h.c.mu.Unlock()
	pid2, epoch2 := h.mustInit()
	if pid2 == pid || epoch2 != 0 {
		t.Fatalf("after exhaustion: %d/%d, want a new id at 0", pid2, epoch2)
	}
	// The old producer retrying the call that rotated the id (KIP-360)
	// gets the same answer.
	resp := h.init(4, 1000, pid, math.MaxInt16-1)
	if resp.ErrorCode != 0 || resp.ProducerID != pid2 || resp.ProducerEpoch != 0 {
		t.Fatalf("retry after rotation: %+v", resp)
	}
}

func TestCommitAndAbort(t *testing.T) {
	h := newHarness(t, testConfig())
	pid, epoch := h.mustInit()
	if got := h.end(3, pid, epoch, true); got != kerr.InvalidTxnState.Code {
		t.Errorf("EndTxn without a transaction: %v", kerr.ErrorForCode(got))
	}
	if got := h.add(3, pid, epoch, "nope", 0); !slices.Equal(got, codes(kerr.UnknownTopicOrPartition)) {
		t.Errorf("unknown topic: %v", got)
	}
	if got := h.add(3, pid, epoch, "t1", 0, 7); !slices.Equal(got, codes(kerr.OperationNotAttempted, kerr.UnknownTopicOrPartition)) {
		t.Errorf("partition beyond count: %v", got)
	}
	if got := h.add(3, pid+1, epoch, "t1", 0); !slices.Equal(got, codes(kerr.InvalidProducerIDMapping)) {
		t.Errorf("other producer id: %v", got)
	}
	if got := h.add(3, pid, epoch+1, "t1", 0); !slices.Equal(got, codes(kerr.ProducerFenced)) {
		t.Errorf("other epoch v3: %v", got)
	}
	if got := h.add(1, pid, epoch+1, "t1", 0); !slices.Equal(got, codes(kerr.InvalidProducerEpoch)) {
		t.Errorf("other epoch v1: %v", got)
	}
	if got := h.add(3, pid, epoch, "t1", 0, 2); !slices.Equal(got, []int16{0, 0}) {
		t.Fatalf("add: %v", got)
	}
	offsets := kmsg.NewPtrAddOffsetsToTxnRequest()
	offsets.Version, offsets.TransactionalID, offsets.ProducerID, offsets.ProducerEpoch, offsets.Group = 3, testID, pid, epoch, "g"
	if got := h.c.AddOffsetsToTxn(context.Background(), offsets); got.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	d := h.describe()
	if d.State != "Ongoing" || d.ProducerID != pid || d.StartTimestamp != h.clock.Now().UnixMilli() || len(d.Topics) != 2 ||
		d.Topics[0].Topic != "__consumer_offsets" || !slices.Equal(d.Topics[1].Partitions, []int32{0, 2}) {
		t.Fatalf("described %+v", d)
	}
	if got := h.end(3, pid, epoch+1, true); got != kerr.ProducerFenced.Code {
		t.Errorf("EndTxn other epoch: %v", kerr.ErrorForCode(got))
	}
	if got := h.end(3, pid, epoch, true); got != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(got))
	}
	h.waitState("CompleteCommit")
	written := h.markers.markers()
	if len(written) != 3 {
		t.Fatalf("markers %+v, want 3", written)
	}
	for _, w := range written {
		if !w.marker.Commit || w.marker.ProducerID != pid || w.marker.ProducerEpoch != epoch {
			t.Errorf("marker %+v", w)
		}
	}
	// Retries of the end: the same end succeeds, the other is refused.
	if got := h.end(3, pid, epoch, true); got != 0 {
		t.Errorf("EndTxn commit retry: %v", kerr.ErrorForCode(got))
	}
	if got := h.end(3, pid, epoch, false); got != kerr.InvalidTxnState.Code {
		t.Errorf("EndTxn abort after commit: %v", kerr.ErrorForCode(got))
	}
	// The next transaction, aborted.
	if got := h.add(3, pid, epoch, "t1", 1); !slices.Equal(got, []int16{0}) {
		t.Fatalf("add: %v", got)
	}
	if d := h.describe(); d.State != "Ongoing" || len(d.Topics) != 1 || !slices.Equal(d.Topics[0].Partitions, []int32{1}) {
		t.Fatalf("second transaction described %+v", d)
	}
	if got := h.end(3, pid, epoch, false); got != 0 {
		t.Fatalf("EndTxn abort: %v", kerr.ErrorForCode(got))
	}
	h.waitState("CompleteAbort")
	written = h.markers.markers()
	if len(written) != 4 || written[3].marker.Commit || written[3].tp != (TopicPartition{"t1", 1}) {
		t.Fatalf("abort marker %+v", written)
	}
}

// TestConcurrentTransactions checks that while the markers of an ended
// transaction are being written, the id's requests answer
// CONCURRENT_TRANSACTIONS.
func TestConcurrentTransactions(t *testing.T) {
	h := newHarness(t, testConfig())
	gate := make(chan struct{})
	h.markers.gate = gate
	pid, epoch := h.mustInit()
	h.add(3, pid, epoch, "t1", 0)
	if got := h.end(3, pid, epoch, true); got != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(got))
	}
	if d := h.describe(); d.State != "PrepareCommit" {
		t.Fatalf("state %s", d.State)
	}
	if got := h.add(3, pid, epoch, "t1", 1); !slices.Equal(got, codes(kerr.ConcurrentTransactions)) {
		t.Errorf("add while committing: %v", got)
	}
	if got := h.init(4, 1000, -1, -1); got.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Errorf("init while committing: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	if got := h.end(3, pid, epoch, true); got != kerr.ConcurrentTransactions.Code {
		t.Errorf("commit retry while committing: %v", kerr.ErrorForCode(got))
	}
	if got := h.end(3, pid, epoch, false); got != kerr.InvalidTxnState.Code {
		t.Errorf("abort while committing: %v", kerr.ErrorForCode(got))
	}
	close(gate)
	h.waitState("CompleteCommit")
	if got := h.add(3, pid, epoch, "t1", 1); !slices.Equal(got, []int16{0}) {
		t.Errorf("add after commit: %v", got)
	}
}

// TestInitFencesOngoing checks that a new instance aborts the previous
// one's transaction with a bumped epoch, and the previous one is fenced.
func TestInitFencesOngoing(t *testing.T) {
	h := newHarness(t, testConfig())
	pid, epoch := h.mustInit()
	h.add(3, pid, epoch, "t1", 0, 1)
	if got := h.init(4, 60000, -1, -1); got.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init over an ongoing transaction: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	h.waitState("CompleteAbort")
	for _, w := range h.markers.markers() {
		if w.marker.Commit || w.marker.ProducerEpoch != epoch+1 {
			t.Errorf("fencing marker %+v, want abort at epoch %d", w, epoch+1)
		}
	}
	pid2, epoch2 := h.mustInit()
	if pid2 != pid || epoch2 != epoch+2 {
		t.Fatalf("new instance %d/%d, want %d/%d", pid2, epoch2, pid, epoch+2)
	}
	if got := h.end(3, pid, epoch, true); got != kerr.ProducerFenced.Code {
		t.Errorf("old instance EndTxn: %v", kerr.ErrorForCode(got))
	}
	if got := h.add(3, pid, epoch, "t1", 0); !slices.Equal(got, codes(kerr.ProducerFenced)) {
		t.Errorf("old instance add: %v", got)
	}
}

// TestLoadResendsMarkers checks that state survives a restart and that a
// transaction left prepared has its markers written by the next
// coordinator.
func TestLoadResendsMarkers(t *testing.T) {
	h := newHarness(t, testConfig())
	pid, epoch := h.mustInit()
	h.add(3, pid, epoch, "t1", 0, 1)
	h.markers.setFail(true)
	if got := h.end(3, pid, epoch, true); got != 0 {
		t.Fatalf("EndTxn: %v", kerr.ErrorForCode(got))
	}
	// Wait for a failed attempt, so the restart interrupts a sender.
	deadline := time.Now().Add(10 * time.Second)
	for h.markers.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	h.restart()
	d := h.describe()
	if d.State != "PrepareCommit" || d.ProducerID != pid || d.ProducerEpoch != epoch || len(d.Topics) != 1 || len(d.Topics[0].Partitions) != 2 {
		t.Fatalf("after restart: %+v", d)
	}
	h.markers.setFail(false)
	h.waitState("CompleteCommit")
	if n := len(h.markers.markers()); n != 2 {
		t.Fatalf("%d markers written, want 2", n)
	}
	h.restart()
	if d := h.describe(); d.State != "CompleteCommit" || d.StartTimestamp != -1 || len(d.Topics) != 0 {
		t.Fatalf("after second restart: %+v", d)
	}
	if _, epoch2 := h.mustInit(); epoch2 != epoch+1 {
		t.Errorf("init after restart: epoch %d, want %d", epoch2, epoch+1)
	}
}

func TestTimedOutTransactionAborted(t *testing.T) {
	cfg := testConfig()
	cfg.AbortTimedOutInterval = 5 * time.Millisecond
	h := newHarness(t, cfg)
	resp := h.init(4, 1000, -1, -1)
	pid, epoch := resp.ProducerID, resp.ProducerEpoch
	h.add(3, pid, epoch, "t1", 2)
	h.clock.advance(999 * time.Millisecond)
	// Not yet timed out: several checks pass without an abort.
	for start := h.c.abortChecks(); h.c.abortChecks() < start+3; {
		time.Sleep(time.Millisecond)
	}
	if d := h.describe(); d.State != "Ongoing" {
		t.Fatalf("aborted before its timeout: %s", d.State)
	}
	h.clock.advance(2 * time.Millisecond)
	d := h.waitState("CompleteAbort")
	if d.ProducerEpoch != epoch+1 {
		t.Errorf("epoch after the abort %d, want %d", d.ProducerEpoch, epoch+1)
	}
	written := h.markers.markers()
	if len(written) != 1 || written[0].marker.Commit || written[0].marker.ProducerEpoch != epoch+1 {
		t.Errorf("markers %+v", written)
	}
	if got := h.end(3, pid, epoch, true); got != kerr.ProducerFenced.Code {
		t.Errorf("timed-out producer's commit: %v", kerr.ErrorForCode(got))
	}
}

func TestTransactionalIDExpires(t *testing.T) {
	cfg := testConfig()
	cfg.RemoveExpiredInterval = 5 * time.Millisecond
	cfg.IDExpiration = time.Hour
	h := newHarness(t, cfg)
	pid, _ := h.mustInit()
	h.clock.advance(time.Hour + time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for h.describe().ErrorCode != kerr.TransactionalIDNotFound.Code {
		if time.Now().After(deadline) {
			t.Fatalf("not expired: %+v", h.describe())
		}
		time.Sleep(time.Millisecond)
	}
	h.restart()
	if d := h.describe(); d.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("expired id back after restart: %+v", d)
	}
	if pid2, epoch := h.mustInit(); pid2 == pid || epoch != 0 {
		t.Errorf("init after expiry: %d/%d, want a new id", pid2, epoch)
	}
}

func TestVerifyOnly(t *testing.T) {
	h := newHarness(t, testConfig())
	pid, epoch := h.mustInit()
	h.add(3, pid, epoch, "t1", 0)
	verify := func(pid int64, epoch int16, partitions ...int32) []int16 {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = 4
		tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = testID, pid, epoch, true
		tx.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "t1", Partitions: partitions}}
		req.Transactions = append(req.Transactions, tx)
		resp := h.c.AddPartitionsToTxn(context.Background(), req)
		var out []int16
		for _, p := range resp.Transactions[0].Topics[0].Partitions {
			out = append(out, p.ErrorCode)
		}
		return out
	}
	if got := verify(pid, epoch, 0, 1, 9); !slices.Equal(got, codes(&kerr.Error{}, kerr.InvalidTxnState, kerr.UnknownTopicOrPartition)) {
		t.Errorf("verify: %v", got)
	}
	if got := verify(pid, epoch+1, 0); !slices.Equal(got, codes(kerr.InvalidProducerEpoch)) {
		t.Errorf("verify other epoch: %v", got)
	}
	// Verifying stores nothing.
	if d := h.describe(); len(d.Topics) != 1 || len(d.Topics[0].Partitions) != 1 {
		t.Errorf("verify changed the transaction: %+v", d)
	}
}

func TestListTransactions(t *testing.T) {
	h := newHarness(t, testConfig())
	pid, epoch := h.mustInit()
	h.add(3, pid, epoch, "t1", 0)
	h.clock.advance(time.Minute)
	list := func(version int16, states []string, pids []int64, duration int64, pattern *string) *kmsg.ListTransactionsResponse {
		req := kmsg.NewPtrListTransactionsRequest()
		req.Version, req.StateFilters, req.ProducerIDFilters, req.DurationFilterMillis, req.TransactionalIDPattern = version, states, pids, duration, pattern
		return h.c.ListTransactions(context.Background(), req)
	}
	ids := func(resp *kmsg.ListTransactionsResponse) []string {
		var out []string
		for _, s := range resp.TransactionStates {
			out = append(out, s.TransactionalID+"/"+s.TransactionState)
		}
		return out
	}
	pat, bad := "^pay", "("
	for _, tc := range []struct {
		name string
		resp *kmsg.ListTransactionsResponse
		want []string
	}{
		{"all", list(0, nil, nil, -1, nil), []string{testID + "/Ongoing"}},
		{"state", list(0, []string{"Ongoing"}, nil, -1, nil), []string{testID + "/Ongoing"}},
		{"other state", list(0, []string{"Empty"}, nil, -1, nil), nil},
		{"producer", list(0, nil, []int64{pid}, -1, nil), []string{testID + "/Ongoing"}},
		{"other producer", list(0, nil, []int64{pid + 1}, -1, nil), nil},
		{"running longer", list(1, nil, nil, 30000, nil), []string{testID + "/Ongoing"}},
		{"not running that long", list(1, nil, nil, 120000, nil), nil},
		{"pattern", list(2, nil, nil, -1, &pat), []string{testID + "/Ongoing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.resp.ErrorCode != 0 || !slices.Equal(ids(tc.resp), tc.want) {
				t.Errorf("listed %v (code %d), want %v", ids(tc.resp), tc.resp.ErrorCode, tc.want)
			}
		})
	}
	if resp := list(0, []string{"Sleeping"}, nil, -1, nil); !slices.Equal(resp.UnknownStateFilters, []string{"Sleeping"}) || len(resp.TransactionStates) != 0 {
		t.Errorf("unknown state filter: %+v", resp)
	}
	if resp := list(2, nil, nil, -1, &bad); resp.ErrorCode != kerr.InvalidRegularExpression.Code {
		t.Errorf("bad pattern: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestFindCoordinator(t *testing.T) {
	h := newHarness(t, testConfig())
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version, req.CoordinatorType, req.CoordinatorKeys = 4, 1, []string{testID, ""}
	resp := h.c.FindCoordinator(context.Background(), req)
	if len(resp.Coordinators) != 2 || resp.Coordinators[0].ErrorCode != 0 || resp.Coordinators[0].NodeID != h.cl.NodeID() ||
		resp.Coordinators[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("FindCoordinator: %+v", resp.Coordinators)
	}
}
