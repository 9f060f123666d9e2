package consumergroup

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication"
)

// txnLog keeps, per __consumer_offsets partition and base offset, the
// header fields (attributes, producer id and epoch) of the transactional
// and control batches the fake cluster stored as plain batches; Read puts
// them back, so a load sees the log a transactional partition would hold.
type txnLog struct {
	mu      sync.Mutex
	batches map[int32]map[int64]log.BatchHeader
	// refused are the guards the fake partition refuses
	// (INVALID_TXN_STATE), as a real one refuses a guard a marker ended.
	refused map[uint64]bool
}

// refuses reports whether guard is among the refused ones.
func (l *txnLog) refuses(guard uint64) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused[guard]
}

// refuse makes the fake partition refuse guard.
func (l *txnLog) refuse(guard uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refused == nil {
		l.refused = map[uint64]bool{}
	}
	l.refused[guard] = true
}

// append stores batch (one transactional or control batch) through p's
// plain Append and remembers its header.
func (l *txnLog) append(ctx context.Context, p *fakePartition, batch []byte) (replication.Appended, error) {
	h, err := log.ParseBatchHeader(batch)
	if err != nil {
		return replication.Appended{}, err
	}
	plain := h
	plain.Attributes &^= 0x30
	plain.ProducerID, plain.ProducerEpoch, plain.BaseSequence = -1, -1, -1
	res, err := p.handle.Append(ctx, log.AppendBatch(nil, plain, batch[log.BatchHeaderSize:]))
	if err != nil {
		return res, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.batches[p.index] == nil {
		l.batches[p.index] = map[int64]log.BatchHeader{}
	}
	l.batches[p.index][res.BaseOffset] = h
	return res, nil
}

// patch returns a copy of the batches b read from partition index with the
// remembered headers restored.
func (l *txnLog) patch(index int32, b []byte) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []byte
	for len(b) > 0 {
		h, err := log.ParseBatchHeader(b)
		if err != nil || h.Size() > len(b) {
			return append(out, b...)
		}
		batch := b[:h.Size()]
		b = b[h.Size():]
		orig, ok := l.batches[index][h.BaseOffset]
		if !ok {
			out = append(out, batch...)
			continue
		}
		h.Attributes, h.ProducerID, h.ProducerEpoch = orig.Attributes, orig.ProducerID, orig.ProducerEpoch
		out = log.AppendBatch(out, h, batch[log.BatchHeaderSize:])
	}
	return out
}

// markerBatch is a transaction marker's control batch, as a partition
// leader writes it.
func markerBatch(producerID int64, epoch int16, commit bool) []byte {
	k := kmsg.NewControlRecordKey()
	if commit {
		k.Type = 1
	}
	v := kmsg.NewEndTxnMarker()
	rec := record.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
	h := log.BatchHeader{
		PartitionLeaderEpoch: -1, Attributes: 0x30, ProducerID: producerID, ProducerEpoch: epoch, BaseSequence: -1, RecordCount: 1,
	}
	return log.AppendBatch(nil, h, record.AppendRecord(nil, &rec))
}

// writeMarker does what wire's writeTxnMarker does on the group's
// partition leader c: append the marker, wait for it, complete the
// transaction.
func writeMarker(t *testing.T, c *Coordinator, group string, producerID int64, commit bool) {
	t.Helper()
	p := c.partitionFor(group)
	h := c.handle(p).(*fakePartition)
	res, err := h.cluster.txn.append(context.Background(), h, markerBatch(producerID, 0, commit))
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.CompleteTransaction(p, producerID, 0, commit)
}

// txnCommit commits one offset of t1 partition in producer pid's
// transaction (v3, as a consumer-transform-producer sends it) and returns
// the partition's error code.
func txnCommit(c *Coordinator, group string, pid int64, memberID string, generation int32, partition int32, offset int64) int16 {
	return txnCommitGuarded(c, group, pid, memberID, generation, partition, offset, 0)
}

// txnCommitGuarded is txnCommit verified with guard.
func txnCommitGuarded(c *Coordinator, group string, pid int64, memberID string, generation int32, partition int32, offset int64, guard uint64) int16 {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = "tx", group, pid, 0
	req.MemberID, req.Generation = memberID, generation
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t1", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: partition, Offset: offset, LeaderEpoch: -1}}}}
	return c.TxnOffsetCommit(context.Background(), req, guard).Topics[0].Partitions[0].ErrorCode
}

// fetchStable is fetchOffset with RequireStable: the partition's error
// code and offset.
func fetchStable(c *Coordinator, group string) (int16, int64) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group, req.RequireStable = group, true
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t1", Partitions: []int32{0}}}
	resp := c.OffsetFetch(context.Background(), req)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode, -1
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.Offset
}

// TestLateTxnOffsetCommitRefused has the group's partition refuse a
// transactional commit (as it refuses one whose verification guard a
// marker ended: its transaction is over): the answer is
// INVALID_TXN_STATE, the group's committed offset stays as it was and is
// not left pending (no UNSTABLE_OFFSET_COMMIT), and a group the commit
// would have created does not appear.
func TestLateTxnOffsetCommitRefused(t *testing.T) {
	_, c1, _ := twoCoordinators(t)
	const pid, ended = 4100, 77
	if code := settled(t, c1, func() int16 { return txnCommit(c1, testGroup, pid, "", -1, 0, 10) }); code != 0 {
		t.Fatalf("TxnOffsetCommit: code %d", code)
	}
	writeMarker(t, c1, testGroup, pid, true)
	c1.handle(c1.partitionFor(testGroup)).(*fakePartition).cluster.txn.refuse(ended)

	if code := txnCommitGuarded(c1, testGroup, pid, "", -1, 0, 20, ended); code != kerr.InvalidTxnState.Code {
		t.Fatalf("late TxnOffsetCommit: code %d, want INVALID_TXN_STATE", code)
	}
	if code, off := fetchStable(c1, testGroup); code != 0 || off != 10 {
		t.Fatalf("RequireStable fetch after the refused commit: code %d offset %d, want 0 and 10", code, off)
	}
	const fresh = "late-fresh-group"
	if code := settled(t, c1, func() int16 { return txnCommitGuarded(c1, fresh, pid, "", -1, 0, 20, ended) }); code != kerr.InvalidTxnState.Code {
		t.Fatalf("late TxnOffsetCommit to a new group: code %d, want INVALID_TXN_STATE", code)
	}
	for _, st := range c1.Stats() {
		if st.ID == fresh {
			t.Fatalf("a refused commit left group %q behind: %+v", fresh, st)
		}
	}
	// The fake partition refuses only that guard: a commit under
	// another is stored, the group created.
	if code := txnCommitGuarded(c1, fresh, pid, "", -1, 0, 20, ended+1); code != 0 {
		t.Fatalf("TxnOffsetCommit under a guard in force: code %d", code)
	}
	if code, _ := fetchStable(c1, fresh); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("RequireStable fetch while pending: code %d, want UNSTABLE_OFFSET_COMMIT", code)
	}
}

// TestTxnOffsetsVisibleOnCommitOnly commits offsets in transactions: they
// are invisible (and unstable to RequireStable) until the commit marker,
// and an aborted transaction's offsets vanish.
func TestTxnOffsetsVisibleOnCommitOnly(t *testing.T) {
	_, c1, _ := twoCoordinators(t)
	const pid = 4000
	if code := settled(t, c1, func() int16 { return txnCommit(c1, testGroup, pid, "", -1, 0, 10) }); code != 0 {
		t.Fatalf("TxnOffsetCommit: code %d", code)
	}
	if code, off := fetchOffset(c1, testGroup); code != 0 || off != -1 {
		t.Fatalf("fetch while pending: code %d offset %d, want 0 and -1", code, off)
	}
	if code, _ := fetchStable(c1, testGroup); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("RequireStable fetch while pending: code %d, want UNSTABLE_OFFSET_COMMIT", code)
	}
	if st := c1.Stats(); len(st) != 1 || len(st[0].Offsets) != 0 {
		t.Fatalf("Stats while pending = %+v, want the group without offsets", st)
	}
	writeMarker(t, c1, testGroup, pid, true)
	if code, off := fetchStable(c1, testGroup); code != 0 || off != 10 {
		t.Fatalf("fetch after commit: code %d offset %d, want 10", code, off)
	}

	if code := txnCommit(c1, testGroup, pid, "", -1, 0, 20); code != 0 {
		t.Fatalf("TxnOffsetCommit: code %d", code)
	}
	writeMarker(t, c1, testGroup, pid, false)
	if code, off := fetchStable(c1, testGroup); code != 0 || off != 10 {
		t.Fatalf("fetch after abort: code %d offset %d, want 10", code, off)
	}

	// A marker of another producer leaves this one's offsets pending.
	if code := txnCommit(c1, testGroup, pid, "", -1, 0, 30); code != 0 {
		t.Fatalf("TxnOffsetCommit: code %d", code)
	}
	writeMarker(t, c1, testGroup, pid+1, true)
	if code, _ := fetchStable(c1, testGroup); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("RequireStable fetch after another producer's marker: code %d, want UNSTABLE_OFFSET_COMMIT", code)
	}
	// A plain commit after the transactional one is later in the log: it
	// wins when the transaction commits.
	if code := commitOffset(c1, testGroup, 35); code != 0 {
		t.Fatalf("OffsetCommit: code %d", code)
	}
	writeMarker(t, c1, testGroup, pid, true)
	if code, off := fetchStable(c1, testGroup); code != 0 || off != 35 {
		t.Fatalf("fetch after commit behind a later plain commit: code %d offset %d, want 35", code, off)
	}
}

// TestTxnOffsetsSurviveLeadershipMove loads a partition holding committed,
// aborted and still open transactions on another node: it rebuilds the
// same state, and the open transaction completes there.
func TestTxnOffsetsSurviveLeadershipMove(t *testing.T) {
	lead, c1, c2 := twoCoordinators(t)
	p := partitionFor(testGroup, testConfig().OffsetsTopicPartitions)
	other := ""
	for i := 0; other == "" || partitionFor(other, testConfig().OffsetsTopicPartitions) != p; i++ {
		other = fmt.Sprintf("other-group-%d", i)
	}
	step := func(what string, code int16) {
		t.Helper()
		if code != 0 {
			t.Fatalf("%s: code %d", what, code)
		}
	}
	step("commit 1", settled(t, c1, func() int16 { return txnCommit(c1, testGroup, 1, "", -1, 0, 11) }))
	step("commit 2", txnCommit(c1, testGroup, 2, "", -1, 0, 22))
	step("commit 3", txnCommit(c1, other, 3, "", -1, 0, 33))
	writeMarker(t, c1, testGroup, 1, true)
	writeMarker(t, c1, testGroup, 2, false)

	lead.set(p, 2, 2)
	var off int64
	code := settled(t, c2, func() (code int16) { code, off = fetchOffset(c2, testGroup); return code })
	if code != 0 || off != 11 {
		t.Fatalf("loaded group: code %d offset %d, want 11 (the committed transaction's, not the aborted one's)", code, off)
	}
	if code, _ := fetchStable(c2, other); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("loaded open transaction: code %d, want UNSTABLE_OFFSET_COMMIT", code)
	}
	writeMarker(t, c2, other, 3, true)
	if code, off := fetchStable(c2, other); code != 0 || off != 33 {
		t.Fatalf("open transaction committed after the load: code %d offset %d, want 33", code, off)
	}
}

// TestTxnOffsetCommitChecks covers the request's refusals: KIP-447 member
// checks from v3, unknown partitions, a group being deleted or deleted
// while its transaction is open.
func TestTxnOffsetCommitChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c1, _ := twoCoordinators(t)
		h := &harness{t: t, c: c1}
		settled(t, c1, func() int16 { code, _ := fetchOffset(c1, testGroup); return code })
		g := h.formGroup(1)
		m := g.members[0]
		for _, tc := range []struct {
			name       string
			member     string
			generation int32
			want       int16
		}{
			{"member of the generation", m, g.generation, 0},
			{"old generation", m, g.generation - 1, kerr.IllegalGeneration.Code},
			{"unknown member", "nobody", g.generation, kerr.UnknownMemberID.Code},
			{"generation without member", "", g.generation, kerr.UnknownMemberID.Code},
			{"neither (v0-v2 style)", "", -1, 0},
		} {
			if code := txnCommit(c1, testGroup, 7, tc.member, tc.generation, 0, 5); code != tc.want {
				t.Errorf("%s: code %d, want %d", tc.name, code, tc.want)
			}
		}
		// v2 carries no member: the fields are ignored.
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = 2
		req.Group, req.ProducerID, req.MemberID, req.Generation = testGroup, 7, "nobody", 99
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t1", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 1, Offset: 5}, {Partition: 9, Offset: 5}}}}
		resp := c1.TxnOffsetCommit(context.Background(), req, 0)
		if got := resp.Topics[0].Partitions; got[0].ErrorCode != 0 || got[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("v2 with member fields and an unknown partition: %+v", got)
		}
		req.ProducerID = -1
		if got := c1.TxnOffsetCommit(context.Background(), req, 0).Topics[0].Partitions[0].ErrorCode; got != kerr.InvalidProducerIDMapping.Code {
			t.Errorf("producer id -1: code %d, want INVALID_PRODUCER_ID_MAPPING", got)
		}
		req.ProducerID, req.Group = 7, ""
		if got := c1.TxnOffsetCommit(context.Background(), req, 0).Topics[0].Partitions[0].ErrorCode; got != kerr.InvalidGroupID.Code {
			t.Errorf("empty group: code %d, want INVALID_GROUP_ID", got)
		}

		// A new group: created empty, the offsets pending; deleting it
		// drops them, and the transaction's later commit brings nothing
		// back.
		fresh := "fresh-group"
		if code := settled(t, c1, func() int16 { return txnCommit(c1, fresh, 8, "", -1, 0, 77) }); code != 0 {
			t.Fatalf("commit to a new group: code %d", code)
		}
		dreq := kmsg.NewPtrDeleteGroupsRequest()
		dreq.Groups = []string{fresh}
		if code := c1.DeleteGroups(context.Background(), dreq).Groups[0].ErrorCode; code != 0 {
			t.Fatalf("delete: code %d", code)
		}
		writeMarker(t, c1, fresh, 8, true)
		if code, off := fetchStable(c1, fresh); code != 0 || off != -1 {
			t.Fatalf("deleted group after its transaction committed: code %d offset %d, want -1", code, off)
		}
	})
}

// TestEncodeTxnBatch checks the batch TxnOffsetCommit appends: a valid
// transactional batch of the producer without sequence numbers.
func TestEncodeTxnBatch(t *testing.T) {
	b := encodeTxnBatch([]kv{{key: []byte("k1"), value: []byte("v1")}, {key: []byte("k2"), value: []byte("v2")}}, 42, 3)
	h, err := log.VerifyProducedBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Transactional() || h.Control() || h.ProducerID != 42 || h.ProducerEpoch != 3 || h.BaseSequence != -1 || h.RecordCount != 2 {
		t.Fatalf("header %+v", h)
	}
	_, it, err := record.Records(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Record().Key))
	}
	if it.Err() != nil || len(keys) != 2 || keys[0] != "k1" || keys[1] != "k2" {
		t.Fatalf("records %v, err %v", keys, it.Err())
	}
}

// TestTxnCompletionDuringLoad completes a transaction while its partition
// loads: the load reads the transaction's offsets but not its marker
// (committed after the load's last read), and applies the completion
// noted meanwhile when it installs the groups.
func TestTxnCompletionDuringLoad(t *testing.T) {
	lead, c1, c2 := twoCoordinators(t)
	p := partitionFor(testGroup, testConfig().OffsetsTopicPartitions)
	if code := settled(t, c1, func() int16 { return txnCommit(c1, testGroup, 5, "", -1, 0, 50) }); code != 0 {
		t.Fatalf("TxnOffsetCommit: code %d", code)
	}
	lead.set(p, 2, 2)
	// Start c2's load by hand, as coordinatorLocked does, so the
	// completion arrives while it runs and before it reads.
	c2.mu.Lock()
	c2.owned[p].Begin(2)
	c2.wg.Add(1)
	c2.mu.Unlock()
	c2.CompleteTransaction(p, 5, 0, true)
	func() {
		defer c2.wg.Done()
		if err := c2.loadPartition(p, c2.handle(p), 2); err != nil {
			t.Fatalf("load: %v", err)
		}
	}()
	if code, off := fetchStable(c2, testGroup); code != 0 || off != 50 {
		t.Fatalf("after the load: code %d offset %d, want 50 (the completion noted during the load applied)", code, off)
	}
	c2.mu.Lock()
	left := len(c2.owned[p].completions)
	c2.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d completions left after the load", left)
	}
}
