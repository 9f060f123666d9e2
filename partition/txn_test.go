package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
)

// txnBatch returns a transactional batch of n records of producer id at
// epoch, first sequence seq.
func txnBatch(t testing.TB, id int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	b := idem(id, epoch, seq, n)
	b.attributes = 0x10
	return b.build(t)
}

// marker is a TxnMarker of coordinator epoch 0.
func marker(id int64, epoch int16, commit bool) TxnMarker {
	return TxnMarker{ProducerID: id, ProducerEpoch: epoch, Commit: commit}
}

func mustMarker(t testing.TB, r *Replica, m TxnMarker) AppendResult {
	t.Helper()
	res, err := r.AppendMarker(m)
	if err != nil {
		t.Fatalf("AppendMarker(%+v): %v", m, err)
	}
	return res
}

func wantLSO(t testing.TB, r *Replica, want int64) {
	t.Helper()
	if o := r.Offsets(); o.LastStable != want {
		t.Fatalf("offsets %+v, want last stable %d", o, want)
	}
}

// readCommitted reads everything visible to read_committed from offset.
func readCommitted(t testing.TB, r *Replica, offset int64) ReadResult {
	t.Helper()
	res, err := r.Read(nil, ReadRequest{Offset: offset, MaxBytes: 1 << 20, Isolation: ReadCommitted})
	if err != nil {
		t.Fatalf("Read committed from %d: %v", offset, err)
	}
	return res
}

// TestTxnCommitAbort: two interleaved transactions, one aborted and one
// committed; the LSO waits for the oldest; read_committed reads stop at it
// and report the aborted one.
func TestTxnCommitAbort(t *testing.T) {
	r := newEnv(t).open(t)
	mustAppend(t, r, plain(1, 1000).build(t)) // 0
	mustAppend(t, r, txnBatch(t, 1, 0, 0, 2)) // 1-2
	wantLSO(t, r, 1)
	mustAppend(t, r, txnBatch(t, 2, 0, 0, 1))                              // 3
	mustAppend(t, r, plain(1, 1000).build(t))                              // 4
	mustAppend(t, r, txnBatch(t, 1, 0, 2, 1))                              // 5: continues
	if res := mustMarker(t, r, marker(2, 0, false)); res.BaseOffset != 6 { // abort 2
		t.Fatalf("marker at %d, want 6", res.BaseOffset)
	}
	wantLSO(t, r, 1)
	res := readCommitted(t, r, 0)
	if end := batchesEnd(res.Records); end != 1 || len(res.Aborted) != 0 {
		t.Fatalf("read_committed below an open transaction: end %d, aborted %v", end, res.Aborted)
	}
	if res := readCommitted(t, r, 1); len(res.Records) != 0 || res.LastStableOffset != 1 {
		t.Fatalf("read_committed at the LSO: %d bytes, %+v", len(res.Records), res)
	}
	ps, err := r.Producers()
	if err != nil || len(ps) != 2 || ps[0].CurrentTxnStartOffset != 1 || ps[1].CurrentTxnStartOffset != -1 || ps[1].CoordinatorEpoch != 0 {
		t.Fatalf("Producers = %+v, %v", ps, err)
	}

	mustMarker(t, r, marker(1, 0, true)) // 7
	wantLSO(t, r, 8)
	res = readCommitted(t, r, 0)
	if end := batchesEnd(res.Records); end != 8 {
		t.Fatalf("read_committed ends at %d, want 8", end)
	}
	if want := []AbortedTxn{{ProducerID: 2, FirstOffset: 3}}; !slices.Equal(res.Aborted, want) {
		t.Fatalf("aborted %v, want %v", res.Aborted, want)
	}
	// From past the abort marker, nothing aborted overlaps.
	if res := readCommitted(t, r, 7); len(res.Aborted) != 0 {
		t.Fatalf("aborted from 7: %v", res.Aborted)
	}
	// read_uncommitted reports no aborted transactions.
	if res, err := r.Read(nil, ReadRequest{Offset: 0, MaxBytes: 1 << 20}); err != nil || res.Aborted != nil {
		t.Fatalf("read_uncommitted: %v, %v", res.Aborted, err)
	}
	ps, _ = r.Producers()
	if ps[0].CurrentTxnStartOffset != -1 || ps[0].LastSequence != 2 {
		t.Fatalf("producer 1 after commit: %+v", ps[0])
	}
}

func TestTxnFencing(t *testing.T) {
	r := newEnv(t).open(t)
	mustAppend(t, r, txnBatch(t, 1, 1, 0, 1))
	for _, tc := range []struct {
		name string
		m    TxnMarker
		want *kerr.Error
	}{
		{"older producer epoch", TxnMarker{ProducerID: 1, ProducerEpoch: 0, Commit: true, CoordinatorEpoch: 5}, kerr.InvalidProducerEpoch},
		{"commit", TxnMarker{ProducerID: 1, ProducerEpoch: 1, Commit: true, CoordinatorEpoch: 5}, nil},
		{"older coordinator", TxnMarker{ProducerID: 1, ProducerEpoch: 1, Commit: false, CoordinatorEpoch: 4}, kerr.TransactionCoordinatorFenced},
		{"bump by marker", TxnMarker{ProducerID: 1, ProducerEpoch: 2, Commit: false, CoordinatorEpoch: 5}, nil},
	} {
		if _, err := r.PrepareMarker(tc.m, 0); tc.want != nil && err != tc.want {
			t.Fatalf("%s: PrepareMarker = %v, want %v", tc.name, err, tc.want)
		}
		r.ResetPending()
		before := r.Offsets()
		_, err := r.AppendMarker(tc.m)
		if tc.want == nil && err != nil || tc.want != nil && err != tc.want {
			t.Fatalf("%s: AppendMarker = %v, want %v", tc.name, err, tc.want)
		}
		if tc.want != nil && r.Offsets() != before {
			t.Fatalf("%s: refused marker moved offsets %+v -> %+v", tc.name, before, r.Offsets())
		}
	}
	// The marker raised the epoch: the old one is fenced.
	if _, err := r.Append(txnBatch(t, 1, 1, 1, 1)); err != kerr.InvalidProducerEpoch {
		t.Fatalf("data at the old epoch: %v", err)
	}
	// A producer in a transaction writes only transactional batches.
	mustAppend(t, r, txnBatch(t, 1, 2, 0, 1))
	if _, err := r.Append(idem(1, 2, 1, 1).build(t)); err != kerr.InvalidTxnState {
		t.Fatalf("non-transactional batch in a transaction: %v", err)
	}
	// No abort was recorded for the marker that ended nothing.
	if n := len(*r.txns.aborted.Load()); n != 0 {
		t.Fatalf("%d aborted transactions recorded", n)
	}
	// A client may not write markers; a transactional batch needs a
	// producer id and a sequence.
	b := appendMarkerBatch(nil, marker(1, 2, true), 1000)
	if _, err := r.Append(b); err != kerr.InvalidRecord {
		t.Fatalf("client control batch: %v", err)
	}
	if _, err := r.Append(txnBatch(t, 1, 2, -1, 1)); err != kerr.OutOfOrderSequenceNumber {
		t.Fatalf("client batch without sequence: %v", err)
	}
}

// TestTxnCoordinatorBatches: a coordinator's transactional batches carry
// no sequences, join the producer's transaction and end with its marker.
func TestTxnCoordinatorBatches(t *testing.T) {
	r := newEnv(t).open(t)
	for range 2 {
		if _, err := r.AppendAsCoordinator(txnBatch(t, 7, 3, -1, 1)); err != nil {
			t.Fatalf("AppendAsCoordinator: %v", err)
		}
	}
	wantLSO(t, r, 0)
	if _, err := r.AppendAsCoordinator(txnBatch(t, 7, 2, -1, 1)); err != kerr.InvalidProducerEpoch {
		t.Fatalf("older epoch: %v", err)
	}
	mustMarker(t, r, marker(7, 3, false))
	wantLSO(t, r, 3)
	if res := readCommitted(t, r, 0); !slices.Equal(res.Aborted, []AbortedTxn{{7, 0}}) {
		t.Fatalf("aborted %v", res.Aborted)
	}
}

// txnWorkload leaves r with a committed and an aborted transaction, two
// open ones (from offsets 4 and 6) and a producer whose epoch a marker
// raised.
func txnWorkload(t *testing.T, r *Replica) {
	mustAppend(t, r, txnBatch(t, 1, 0, 0, 2))
	mustAppend(t, r, txnBatch(t, 2, 0, 0, 1))
	mustMarker(t, r, TxnMarker{ProducerID: 1, ProducerEpoch: 0, Commit: true, CoordinatorEpoch: 3})
	mustAppend(t, r, txnBatch(t, 3, 0, 0, 1))
	mustMarker(t, r, TxnMarker{ProducerID: 2, ProducerEpoch: 1, Commit: false, CoordinatorEpoch: 2})
	mustAppend(t, r, txnBatch(t, 1, 0, 2, 1)) // open, at offset 6
	mustAppend(t, r, plain(2, 1000).build(t))
}

// txnView is what a replica's transaction state says, for comparisons.
type txnView struct {
	entries   map[int64]producerEntry
	aborted   []abortedRange
	offsets   Offsets
	producers []ProducerState
}

func viewTxns(t testing.TB, r *Replica) txnView {
	t.Helper()
	ps, err := r.Producers()
	if err != nil {
		t.Fatal(err)
	}
	return txnView{maps.Clone(r.producers.entries), slices.Clone(*r.txns.aborted.Load()), r.Offsets(), ps}
}

func (v txnView) equal(w txnView) bool {
	return maps.Equal(v.entries, w.entries) && slices.Equal(v.aborted, w.aborted) && v.offsets == w.offsets && slices.Equal(v.producers, w.producers)
}

func TestTxnStateSurvivesRestart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close bool
	}{{"clean close (snapshot)", true}, {"kill -9 (rebuild from the log)", false}} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			r := openQuiet(t, env)
			txnWorkload(t, r)
			want := viewTxns(t, r)
			if want.offsets.LastStable != 4 || len(want.aborted) != 1 {
				t.Fatalf("workload state %+v", want)
			}
			if tc.close {
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
			}
			r2 := env.open(t)
			if got := viewTxns(t, r2); !got.equal(want) {
				t.Fatalf("after restart:\n got %+v\nwant %+v", got, want)
			}
			// The open transactions still end with their markers.
			mustMarker(t, r2, TxnMarker{ProducerID: 3, ProducerEpoch: 0, Commit: true})
			wantLSO(t, r2, 6)
			mustMarker(t, r2, TxnMarker{ProducerID: 1, ProducerEpoch: 0, Commit: false, CoordinatorEpoch: 3})
			wantLSO(t, r2, r2.Offsets().HighWatermark)
			if res := readCommitted(t, r2, 0); !slices.Equal(res.Aborted, []AbortedTxn{{2, 2}, {1, 6}}) {
				t.Fatalf("aborted after restart %v", res.Aborted)
			}
		})
	}
}

// TestTxnSnapshotV1 loads a version 1 snapshot (written before
// transactions): the producers are restored, with no transaction state.
func TestTxnSnapshotV1(t *testing.T) {
	env := newEnv(t)
	r := openQuiet(t, env)
	mustAppend(t, r, idem(4, 0, 0, 2).build(t))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	s := readTestSnapshot(t, env)
	v1 := encodeSnapshotV1(s)
	if err := writeRaw(env, v1); err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(v1)
	if err != nil || !maps.Equal(got.entries, s.entries) {
		t.Fatalf("v1 decode: %+v, %v", got, err)
	}
	r2 := env.open(t)
	if res, err := r2.Append(idem(4, 0, 0, 2).build(t)); err != nil || !res.Duplicate {
		t.Fatalf("retry after a v1 snapshot: %+v, %v", res, err)
	}
}

// encodeSnapshotV1 encodes s as version 1 did: no transaction fields.
func encodeSnapshotV1(s *snapshot) []byte {
	be := binary.BigEndian
	b := append([]byte(snapshotMagic), 0, 1)
	b = be.AppendUint64(b, uint64(s.covered))
	b = be.AppendUint64(b, uint64(s.anchorBaseOffset))
	b = be.AppendUint32(b, s.anchorCRC)
	b = be.AppendUint32(b, uint32(len(s.entries)))
	ids := slices.Sorted(maps.Keys(s.entries))
	for _, id := range ids {
		e := s.entries[id]
		b = be.AppendUint64(b, uint64(id))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = append(b, byte(e.count))
		for _, m := range e.batches[:e.count] {
			b = be.AppendUint32(b, uint32(m.firstSequence))
			b = be.AppendUint32(b, uint32(m.lastSequence))
			b = be.AppendUint64(b, uint64(m.baseOffset))
			b = be.AppendUint64(b, uint64(m.lastOffset))
			b = be.AppendUint64(b, uint64(m.timestamp))
		}
	}
	return be.AppendUint32(b, crc32.Checksum(b, crc32c))
}

// writeRaw replaces env's snapshot file with data.
func writeRaw(env *testEnv, data []byte) error {
	f, err := env.fs.OpenFile(filepath.Join(env.dir, snapshotFile), true)
	if err != nil {
		return err
	}
	if err := writeAll(f, data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// TestTxnReplicasDeterministic: replicas applying the leader's entries
// (data, a coordinator's batch, markers) end with the same log and
// transaction state, whatever the leader's overlay did.
func TestTxnReplicasDeterministic(t *testing.T) {
	leaderEnv, followerEnv := newEnv(t), newEnv(t)
	followerEnv.dir = "/data/topics/t-0-follower"
	followerEnv.fs = leaderEnv.fs
	followerEnv.opts.FS = leaderEnv.fs
	leader, follower := leaderEnv.open(t), followerEnv.open(t)
	var entries []Entry
	prepare := func(e Entry, _ AppendResult, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("prepare: %v", err)
		}
		entries = append(entries, e)
	}
	prepareMarker := func(m TxnMarker) {
		t.Helper()
		e, err := leader.PrepareMarker(m, 1)
		prepare(e, AppendResult{}, err)
	}
	prepare(leader.Prepare(txnBatch(t, 1, 0, 0, 2), 1))
	prepare(leader.Prepare(txnBatch(t, 1, 0, 2, 1), 1)) // pipelined
	prepare(leader.PrepareAsCoordinator(txnBatch(t, 2, 0, -1, 1), 1))
	prepareMarker(TxnMarker{ProducerID: 2, ProducerEpoch: 0, CoordinatorEpoch: 1})
	prepareMarker(TxnMarker{ProducerID: 1, ProducerEpoch: 0, Commit: true, CoordinatorEpoch: 1})
	prepare(leader.Prepare(txnBatch(t, 1, 0, 3, 1), 1))
	for _, e := range entries {
		for _, r := range []*Replica{leader, follower} {
			c := e
			c.Batches = bytes.Clone(e.Batches)
			if _, err := r.Apply(c); err != nil {
				t.Fatalf("apply: %v", err)
			}
		}
	}
	lv, fv := viewTxns(t, leader), viewTxns(t, follower)
	if !lv.equal(fv) {
		t.Fatalf("leader %+v\nfollower %+v", lv, fv)
	}
	ld, _ := readAll(t, leader)
	fd, _ := readAll(t, follower)
	if !bytes.Equal(ld, fd) {
		t.Fatal("logs differ")
	}
	if lv.offsets.LastStable != 6 || !slices.Equal(lv.aborted, []abortedRange{{2, 3, 4}}) {
		t.Fatalf("state %+v", lv)
	}
}

// TestTxnLSOWaitsForCommittedMarker: with an external high watermark
// (replication), a transaction stays unstable until its marker is
// committed, and a waiter wakes when the LSO moves.
func TestTxnLSOWaitsForCommittedMarker(t *testing.T) {
	env := newEnv(t)
	env.opts.ExternalHighWatermark = true
	r := env.open(t)
	mustAppend(t, r, plain(1, 1000).build(t))
	mustAppend(t, r, txnBatch(t, 1, 0, 0, 1))
	r.AdvanceHighWatermark(2)
	wantLSO(t, r, 1)
	mustMarker(t, r, marker(1, 0, false))
	wantLSO(t, r, 1) // the marker at 2 is not committed
	w := NewWaiter()
	r.Watch(w)
	defer r.Unwatch(w)
	select {
	case <-w.C:
	default:
	}
	r.AdvanceHighWatermark(3)
	select {
	case <-w.C:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up when the LSO moved")
	}
	wantLSO(t, r, 3)
}

// TestTxnRetentionSparesOpenTxn: retention stops at the LSO, so the first
// batch of an open transaction stays for a rebuild to find.
func TestTxnRetentionSparesOpenTxn(t *testing.T) {
	env, clock := retentionEnv(t, func(c *Config) { c.RetentionTime = time.Hour })
	env.cfg.Log.SegmentBytes = 100 // a segment per batch
	r := env.open(t)
	mustAppend(t, r, plain(1, 0).build(t))
	mustAppend(t, r, txnBatch(t, 1, 0, 0, 1))
	mustAppend(t, r, plain(1, 0).build(t))
	mustAppend(t, r, plain(1, 0).build(t))
	res, err := r.EnforceRetention(clock.now())
	if err != nil || res.LogStartOffset != 1 {
		t.Fatalf("retention %+v, %v; want log start 1 (the open transaction)", res, err)
	}
	mustMarker(t, r, marker(1, 0, true))
	if res, err := r.EnforceRetention(clock.now()); err != nil || res.LogStartOffset <= 1 {
		t.Fatalf("retention after commit %+v, %v", res, err)
	}
}

// TestTxnCompaction: the cleaner removes aborted records (which never
// shadow an older value), keeps markers while data of their transaction
// stays, and removes the others after delete.retention.ms.
func TestTxnCompaction(t *testing.T) {
	env, clock := compactEnv(t)
	r := env.open(t)
	ts := clock.ms
	txnKV := func(id int64, seq int32, records ...kv) []byte {
		o := batchOptions{producerID: id, producerEpoch: 0, sequence: seq}
		b := kvBatch(t, o, records...)
		setTxnAttribute(b)
		return b
	}
	mustAppend(t, r, kvBatch(t, noProducer, kv{key: "a", value: "a1", ts: ts})) // 0
	mustAppend(t, r, txnKV(1, 0, kv{key: "a", value: "a2", ts: ts}))            // 1 aborted
	mustAppend(t, r, txnKV(2, 0, kv{key: "b", value: "b1", ts: ts}))            // 2 committed
	mustMarker(t, r, marker(1, 0, false))                                       // 3
	mustMarker(t, r, marker(2, 0, true))                                        // 4
	mustAppend(t, r, txnKV(3, 0, kv{key: "c", value: "c1", ts: ts}))            // 5 committed, shadowed
	mustMarker(t, r, marker(3, 0, true))                                        // 6
	mustAppend(t, r, kvBatch(t, noProducer, kv{key: "c", value: "c2", ts: ts})) // 7
	// Later batches of producers 1 and 3, so that their aborted or
	// shadowed batches are not their last (which the cleaner keeps,
	// emptied, and with them their markers).
	mustAppend(t, r, txnKV(1, 1, kv{key: "d", value: "d1", ts: ts})) // 8
	mustMarker(t, r, marker(1, 0, true))                             // 9
	mustAppend(t, r, txnKV(3, 1, kv{key: "e", value: "e1", ts: ts})) // 10
	mustMarker(t, r, marker(3, 0, true))                             // 11
	for range 12 {                                                   // roll segments so that the above is cleanable
		mustAppend(t, r, kvBatch(t, noProducer, kv{key: "z", value: "z", ts: ts}))
	}
	mustCompact(t, r, clock, CleanLimits{})
	values := func() map[string]string {
		m := map[string]string{}
		for _, rec := range readRecords(t, r) {
			if rec.key != "" {
				m[rec.key] = rec.value
			}
		}
		return m
	}
	if got := values(); got["a"] != "a1" || got["b"] != "b1" || got["c"] != "c2" {
		t.Fatalf("after the first clean: %v", got)
	}
	markers := func() []int64 {
		_, headers := readAll(t, r)
		var out []int64
		for _, h := range headers {
			if h.Control() && h.RecordCount > 0 {
				out = append(out, h.BaseOffset)
			}
		}
		return out
	}
	if got := markers(); !slices.Equal(got, []int64{3, 4, 6, 9, 11}) {
		t.Fatalf("markers after the first clean at %v, want all within the horizon", got)
	}
	clock.advance(2 * time.Hour)
	mustCompact(t, r, clock, CleanLimits{})
	// The markers of b1, d1 and e1 stay (their data does); those of the
	// aborted a2 and the shadowed c1 go.
	if got := markers(); !slices.Equal(got, []int64{4, 9, 11}) {
		t.Fatalf("markers after the horizon at %v, want 4, 9, 11", got)
	}
	if got := values(); got["a"] != "a1" || got["b"] != "b1" || got["c"] != "c2" {
		t.Fatalf("after the second clean: %v", got)
	}
	// A rebuild from the compacted log finds no open transaction.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_ = env.fs.Remove(env.dir + "/" + snapshotFile)
	r = env.open(t)
	if o := r.Offsets(); o.LastStable != o.HighWatermark {
		t.Fatalf("offsets after rebuild %+v", o)
	}
}

// setTxnAttribute sets the transactional bit of batch b and fixes its CRC.
func setTxnAttribute(b []byte) {
	b[22] |= 0x10
	fixCRC(b)
}

func TestDecodeMarker(t *testing.T) {
	for _, commit := range []bool{false, true} {
		m := TxnMarker{ProducerID: 5, ProducerEpoch: 2, Commit: commit, CoordinatorEpoch: 9}
		b := appendMarkerBatch(nil, m, 1234)
		h, err := log.VerifyBatch(b)
		if err != nil || !h.Control() || !h.Transactional() || h.BaseSequence != -1 {
			t.Fatalf("marker batch %+v, %v", h, err)
		}
		got, ok, err := decodeMarker(b, &h)
		if err != nil || !ok || got != m {
			t.Fatalf("decodeMarker = %+v, %v, %v; want %+v", got, ok, err, m)
		}
	}
	for _, tc := range []struct {
		name       string
		key, value []byte
	}{
		{"short key", []byte{0, 0, 0}, []byte{0, 0, 0, 0, 0, 1}},
		{"negative version", []byte{0xff, 0xff, 0, 1}, []byte{0, 0, 0, 0, 0, 1}},
		{"short value", []byte{0, 0, 0, 1}, []byte{0, 0, 0}},
		{"null value", []byte{0, 0, 0, 1}, nil},
	} {
		if _, _, err := decodeMarkerRecord(tc.key, tc.value); !errors.Is(err, log.ErrCorrupt) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, _, err := decodeMarkerRecord([]byte{0, 0, 0, 7}, nil); err != errNotMarker {
		t.Errorf("unknown control type: %v", err)
	}
}

func FuzzDecodeMarkerRecord(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 3})
	f.Add([]byte{0, 1, 0, 0, 9}, []byte{0, 1, 0, 0, 0, 3, 7})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		commit, epoch, err := decodeMarkerRecord(key, value)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same fields.
		b := appendMarkerBatch(nil, TxnMarker{ProducerID: 1, Commit: commit, CoordinatorEpoch: epoch}, 0)
		h, _ := log.ParseBatchHeader(b)
		m, ok, err := decodeMarker(b, &h)
		if err != nil || !ok || m.Commit != commit || m.CoordinatorEpoch != epoch {
			t.Fatalf("round trip: %+v, %v, %v", m, ok, err)
		}
	})
}
