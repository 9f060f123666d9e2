package share

import (
	"context"
	"errors"
	"reflect"
	"strconv"
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

func earliest() configs.ShareGroup {
	cfg := configs.DefaultShareGroup()
	cfg.AutoOffsetReset = "earliest"
	cfg.RecordLockDuration = 10 * time.Second
	return cfg
}

func wantRanges(t *testing.T, got []AcquiredRange, want ...AcquiredRange) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("acquired %+v, want %+v", got, want)
	}
}

func TestAcquireAcceptAdvancesStart(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 5)
	tm.data.produce(t, 5)
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{0, 9, 1})
	wantRanges(t, tm.acquire(t, "m2", 500))
	if err := tm.ack(t, "m1", 0, 4, AckAccept); err != nil {
		t.Fatal(err)
	}
	if st := tm.persister.State(tm.key()); st.StartOffset != 5 || len(st.Batches) != 0 {
		t.Fatalf("stored %+v, want start 5 and no batches", st)
	}
	// Accepting out of order keeps the start offset until the gap closes.
	if err := tm.ack(t, "m1", 7, 9, AckAccept); err != nil {
		t.Fatal(err)
	}
	if st := tm.persister.State(tm.key()); st.StartOffset != 5 || !reflect.DeepEqual(st.Batches, []sharestate.Batch{{First: 7, Last: 9, State: sharestate.Acknowledged, DeliveryCount: 1}}) {
		t.Fatalf("stored %+v", st)
	}
	if err := tm.ack(t, "m1", 5, 6, AckAccept); err != nil {
		t.Fatal(err)
	}
	if st := tm.persister.State(tm.key()); st.StartOffset != 10 || len(st.Batches) != 0 {
		t.Fatalf("stored %+v, want start 10", st)
	}
	// Acknowledging again is refused: the records are complete.
	if err := tm.ack(t, "m1", 5, 5, AckAccept); !errors.Is(err, kerr.InvalidRecordState) {
		t.Fatalf("second accept: %v, want INVALID_RECORD_STATE", err)
	}
}

func TestAcquireMaxRecordsWholeBatches(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 3)
	tm.data.produce(t, 3)
	tm.data.produce(t, 3)
	// The batch reaching the limit is acquired whole.
	wantRanges(t, tm.acquire(t, "m1", 4), AcquiredRange{0, 5, 1})
	wantRanges(t, tm.acquire(t, "m2", 4), AcquiredRange{6, 8, 1})
}

func TestAcquireStrictRecordLimit(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 5)
	a, err := tm.Acquire(context.Background(), "g", "m1", tm.target, AcquireRequest{MaxRecords: 2, MaxBytes: 1 << 20, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	wantRanges(t, a.Ranges, AcquiredRange{0, 1, 1})
	if len(a.Records) == 0 {
		t.Fatal("no batch for the acquired records")
	}
	wantRanges(t, tm.acquire(t, "m2", 500), AcquiredRange{2, 4, 1})
}

func TestAcknowledgeOnlyOwnRecords(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 4)
	tm.acquire(t, "m1", 500)
	if err := tm.ack(t, "m2", 0, 0, AckAccept); !errors.Is(err, kerr.InvalidRecordState) {
		t.Fatalf("ack of another member's record: %v", err)
	}
	// A bad type list fails the batch.
	err := tm.Acknowledge(context.Background(), "g", "m1", tm.target, []AckBatch{{First: 0, Last: 3, Types: []AckType{1, 1}}}, true)
	if !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("two types for four offsets: %v", err)
	}
	// Per-offset types.
	err = tm.Acknowledge(context.Background(), "g", "m1", tm.target, []AckBatch{{First: 0, Last: 3, Types: []AckType{AckAccept, AckRelease, AckAccept, AckGap}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	st := tm.persister.State(tm.key())
	want := []sharestate.Batch{{First: 1, Last: 1, State: sharestate.Available, DeliveryCount: 1}, {First: 2, Last: 2, State: sharestate.Acknowledged, DeliveryCount: 1}, {First: 3, Last: 3, State: sharestate.Archived, DeliveryCount: 1}}
	if st.StartOffset != 1 || !reflect.DeepEqual(st.Batches, want) {
		t.Fatalf("stored %+v, want start 1 and %+v", st, want)
	}
	wantRanges(t, tm.acquire(t, "m2", 500), AcquiredRange{1, 1, 2})
}

func TestRenewExtendsLock(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 2)
	tm.acquire(t, "m1", 500)
	tm.clock.advance(8 * time.Second)
	if err := tm.ack(t, "m1", 0, 1, AckRenew); err != nil {
		t.Fatal(err)
	}
	tm.clock.advance(8 * time.Second)
	wantRanges(t, tm.acquire(t, "m2", 500))
	if err := tm.ack(t, "m1", 0, 1, AckAccept); err != nil {
		t.Fatalf("accept after renew: %v", err)
	}
	err := tm.Acknowledge(context.Background(), "g", "m1", tm.target, []AckBatch{{First: 0, Last: 0, Types: []AckType{AckRenew}}}, false)
	if !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("renew where not allowed: %v", err)
	}
}

func TestLockExpiryRedelivers(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 3)
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{0, 2, 1})
	tm.clock.advance(9 * time.Second)
	wantRanges(t, tm.acquire(t, "m2", 500))
	tm.clock.advance(2 * time.Second)
	changed := tm.Changed("g")
	wantRanges(t, tm.acquire(t, "m2", 500), AcquiredRange{0, 2, 2})
	select {
	case <-changed:
	default:
		t.Fatal("expiry did not signal Changed")
	}
	if err := tm.ack(t, "m1", 0, 2, AckAccept); !errors.Is(err, kerr.InvalidRecordState) {
		t.Fatalf("late accept: %v", err)
	}
	if err := tm.ack(t, "m2", 0, 2, AckAccept); err != nil {
		t.Fatal(err)
	}
}

func TestLockExpiryTimer(t *testing.T) {
	cfg := earliest()
	cfg.RecordLockDuration = 50 * time.Millisecond
	tm := &testManager{persister: sharetest.NewPersister(), data: newFakePartition()}
	tm.Manager = NewManager(DefaultConfig(), 1, tm.persister, groupConfigs{cfg}, Options{})
	t.Cleanup(tm.Close)
	tm.target = Target{TopicID: [16]byte{1}, Topic: "t", Data: tm.data}
	tm.data.produce(t, 2)
	changed := tm.Changed("g")
	tm.acquire(t, "m1", 500)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no release within 10s of a 50ms lock")
	}
	if st := tm.persister.State(tm.key()); !reflect.DeepEqual(st.Batches, []sharestate.Batch{{First: 0, Last: 1, State: sharestate.Available, DeliveryCount: 1}}) {
		t.Fatalf("stored after expiry %+v", st)
	}
}

func TestDeliveryLimitArchives(t *testing.T) {
	cfg := earliest()
	cfg.DeliveryCountLimit = 2
	tm := newTestManager(t, cfg)
	tm.data.produce(t, 2)
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{0, 1, 1})
	if err := tm.ack(t, "m1", 0, 1, AckRelease); err != nil {
		t.Fatal(err)
	}
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{0, 1, 2})
	if err := tm.ack(t, "m1", 1, 1, AckAccept); err != nil {
		t.Fatal(err)
	}
	if err := tm.ack(t, "m1", 0, 0, AckRelease); err != nil {
		t.Fatal(err)
	}
	wantRanges(t, tm.acquire(t, "m1", 500))
	if st := tm.persister.State(tm.key()); st.StartOffset != 2 {
		t.Fatalf("stored %+v, want start 2 (archived)", st)
	}
	if len(tm.dead.letters) != 0 {
		t.Fatalf("dead letters without a dead-letter topic: %+v", tm.dead.letters)
	}
}

func headerMap(l DeadLetter) map[string]string {
	m := make(map[string]string)
	for _, h := range l.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestRejectDeadLetters(t *testing.T) {
	for _, copyRecord := range []bool{false, true} {
		t.Run("copy="+strconv.FormatBool(copyRecord), func(t *testing.T) {
			cfg := earliest()
			cfg.DeadLetterTopic = "dlq.t"
			cfg.DeadLetterCopyRecord = copyRecord
			tm := newTestManager(t, cfg)
			tm.data.produce(t, 3)
			tm.acquire(t, "m1", 500)
			if err := tm.ack(t, "m1", 1, 1, AckReject); err != nil {
				t.Fatal(err)
			}
			if tm.dead.topic != "dlq.t" || len(tm.dead.letters) != 1 {
				t.Fatalf("dead letters to %q: %+v", tm.dead.topic, tm.dead.letters)
			}
			l := tm.dead.letters[0]
			h := headerMap(l)
			want := map[string]string{HeaderTopic: "t", HeaderPartition: "0", HeaderOffset: "1", HeaderGroup: "g", HeaderDeliveryCount: "1", HeaderMessage: reasonRejected.message()}
			if copyRecord {
				want["h"] = "x"
				if string(l.Key) != "k1" || string(l.Value) != "v1" {
					t.Fatalf("copied key %q value %q", l.Key, l.Value)
				}
			} else if l.Key != nil || l.Value != nil {
				t.Fatalf("key %q value %q without copying", l.Key, l.Value)
			}
			if !reflect.DeepEqual(h, want) || l.Timestamp != 1001 {
				t.Fatalf("headers %v timestamp %d, want %v 1001", h, l.Timestamp, want)
			}
			if st := tm.persister.State(tm.key()); !reflect.DeepEqual(st.Batches, []sharestate.Batch{{First: 1, Last: 1, State: sharestate.Archived, DeliveryCount: 1}}) {
				t.Fatalf("stored %+v", st)
			}
		})
	}
}

func TestMissingDeadLetterTopicArchives(t *testing.T) {
	cfg := earliest()
	cfg.DeadLetterTopic = "dlq.missing"
	tm := newTestManager(t, cfg)
	tm.dead.fail = kerr.UnknownTopicOrPartition
	tm.data.produce(t, 2)
	tm.acquire(t, "m1", 500)
	if err := tm.ack(t, "m1", 0, 0, AckReject); err != nil {
		t.Fatalf("reject with the dead-letter topic missing: %v", err)
	}
	// Another failure keeps the record as stored: delivered again (its
	// delivery counted), once its backoff has passed.
	tm.dead.fail = kerr.NotLeaderForPartition
	if err := tm.ack(t, "m1", 1, 1, AckReject); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("reject with the dead-letter partition unavailable: %v", err)
	}
	wantRanges(t, tm.acquire(t, "m2", 500))
	tm.clock.advance(deadLetterBackoffMin)
	wantRanges(t, tm.acquire(t, "m2", 500), AcquiredRange{1, 1, 2})
}

// TestDeadLetterFailureBacksOff: a record whose dead letter cannot be
// written is held, not handed straight back out, for a backoff that
// doubles with each failure in a row; once the write succeeds the record
// is archived with its dead letter and the backoff is forgotten.
func TestDeadLetterFailureBacksOff(t *testing.T) {
	cfg := earliest()
	cfg.DeadLetterTopic = "dlq.t"
	tm := newTestManager(t, cfg)
	tm.data.produce(t, 1)
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{0, 0, 1})
	tm.data.produce(t, 1)
	tm.dead.fail = kerr.NotLeaderForPartition
	hold := deadLetterBackoffMin
	for delivery := int16(1); delivery <= 3; delivery++ {
		member := "m" + strconv.Itoa(int(delivery))
		if err := tm.ack(t, member, 0, 0, AckReject); !errors.Is(err, kerr.NotLeaderForPartition) {
			t.Fatalf("reject %d with the dead-letter partition unavailable: %v", delivery, err)
		}
		// The other record flows past the held one.
		if delivery == 1 {
			wantRanges(t, tm.acquire(t, "other", 500), AcquiredRange{1, 1, 1})
			if err := tm.ack(t, "other", 1, 1, AckAccept); err != nil {
				t.Fatal(err)
			}
		}
		tm.clock.advance(hold - time.Millisecond)
		wantRanges(t, tm.acquire(t, "m9", 500))
		tm.clock.advance(time.Millisecond)
		next := "m" + strconv.Itoa(int(delivery)+1)
		wantRanges(t, tm.acquire(t, next, 500), AcquiredRange{0, 0, delivery + 1})
		hold *= 2
	}
	tm.dead.fail = nil
	if err := tm.ack(t, "m4", 0, 0, AckReject); err != nil {
		t.Fatalf("reject with the dead-letter partition back: %v", err)
	}
	if len(tm.dead.letters) != 1 || headerMap(tm.dead.letters[0])[HeaderDeliveryCount] != "4" {
		t.Fatalf("dead letters %+v, want one at delivery 4", tm.dead.letters)
	}
	if st := tm.persister.State(tm.key()); st.StartOffset != 2 {
		t.Fatalf("stored %+v, want start 2", st)
	}
	tm.mu.Lock()
	left := len(tm.backoffs)
	tm.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d backoffs left after the dead letter was written", left)
	}
}

func TestDeliveryLimitDeadLettersOnExpiry(t *testing.T) {
	cfg := earliest()
	cfg.DeadLetterTopic = "dlq.t"
	cfg.DeliveryCountLimit = 1
	tm := newTestManager(t, cfg)
	tm.data.produce(t, 1)
	tm.acquire(t, "m1", 500)
	tm.clock.advance(11 * time.Second)
	wantRanges(t, tm.acquire(t, "m2", 500))
	if len(tm.dead.letters) != 1 || headerMap(tm.dead.letters[0])[HeaderMessage] != reasonDeliveryLimit.message() {
		t.Fatalf("dead letters %+v", tm.dead.letters)
	}
	if st := tm.persister.State(tm.key()); st.StartOffset != 1 {
		t.Fatalf("stored %+v, want start 1", st)
	}
}

func TestFailoverReloadsStoredCounts(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 4)
	tm.acquire(t, "m1", 500)
	if err := tm.ack(t, "m1", 0, 0, AckRelease); err != nil {
		t.Fatal(err)
	}
	// A new leader (another node's manager, same coordinator) takes over.
	next := NewManager(DefaultConfig(), 2, tm.persister, groupConfigs{earliest()}, Options{Now: tm.clock.Now})
	t.Cleanup(next.Close)
	tm.data.mu.Lock()
	tm.data.leader, tm.data.epoch = 2, 2
	tm.data.mu.Unlock()
	a, err := next.Acquire(context.Background(), "g", "m2", tm.target, AcquireRequest{MaxRecords: 500, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// Offset 0 was released once (stored count 1); 1-3 were acquired
	// only in the old leader's memory.
	wantRanges(t, a.Ranges, AcquiredRange{0, 0, 2}, AcquiredRange{1, 3, 1})
	// The old leader hears it no longer leads.
	if err := tm.ack(t, "m1", 1, 1, AckAccept); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("old leader's ack: %v", err)
	}
	// Even if it still thinks so, the coordinator fences its writes.
	tm.data.mu.Lock()
	tm.data.leader, tm.data.epoch = 1, 1
	tm.data.mu.Unlock()
	if err := tm.ack(t, "m1", 1, 1, AckAccept); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("fenced old leader's ack: %v", err)
	}
}

func TestFencedStateEpochReloads(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 6)
	tm.acquire(t, "m1", 500)
	// An admin resets the group's offsets to 3.
	if err := tm.persister.Initialize(context.Background(), tm.key(), 1, 3); err != nil {
		t.Fatal(err)
	}
	if err := tm.ack(t, "m1", 0, 5, AckAccept); !errors.Is(err, kerr.InvalidRecordState) {
		t.Fatalf("ack across a reset: %v", err)
	}
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{3, 5, 1})
}

func TestIdleResetNoticed(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 6)
	tm.acquire(t, "m1", 2)
	if err := tm.ack(t, "m1", 0, 5, AckAccept); err != nil {
		t.Fatal(err)
	}
	tm.data.produce(t, 2)
	// With nothing acquired, an admin resets the group to offset 2.
	if err := tm.persister.Initialize(context.Background(), tm.key(), 1, 2); err != nil {
		t.Fatal(err)
	}
	// Until the check interval passes the loaded state is trusted ...
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{6, 7, 1})
	if err := tm.ack(t, "m1", 6, 7, AckRelease); !errors.Is(err, kerr.InvalidRecordState) {
		t.Fatalf("ack across a reset: %v", err)
	}
	// ... and the fenced write reloaded it.
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{2, 7, 1})
	if err := tm.ack(t, "m1", 2, 7, AckAccept); err != nil {
		t.Fatal(err)
	}
	// Idle past the interval, a reset is seen before anything is handed out.
	if err := tm.persister.Initialize(context.Background(), tm.key(), 2, 4); err != nil {
		t.Fatal(err)
	}
	tm.clock.advance(revalidateInterval)
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{4, 7, 1})
}

func TestPersistFailureReloads(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 2)
	tm.acquire(t, "m1", 500)
	tm.persister.Mu.Lock()
	tm.persister.Fail = kerr.CoordinatorNotAvailable
	tm.persister.Mu.Unlock()
	if err := tm.ack(t, "m1", 0, 1, AckAccept); !errors.Is(err, kerr.CoordinatorNotAvailable) {
		t.Fatalf("ack with the coordinator down: %v", err)
	}
	// Not stored, so not accepted: delivered again.
	wantRanges(t, tm.acquire(t, "m2", 500), AcquiredRange{0, 1, 1})
}

func TestMaxRecordLocks(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.Manager.cfg.MaxRecordLocks = 3
	for i := 0; i < 5; i++ {
		tm.data.produce(t, 1)
	}
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{0, 2, 1})
	wantRanges(t, tm.acquire(t, "m2", 500))
	// Accepting the oldest record frees room: waiters are woken.
	changed := tm.Changed("g")
	if err := tm.ack(t, "m1", 0, 0, AckAccept); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("the start offset moved without waking waiters")
	}
	wantRanges(t, tm.acquire(t, "m2", 500), AcquiredRange{3, 3, 1})
}

func TestAutoOffsetReset(t *testing.T) {
	for _, tc := range []struct {
		reset       string
		first, then []AcquiredRange
	}{
		{"earliest", []AcquiredRange{{0, 1, 1}}, []AcquiredRange{{2, 3, 1}}},
		{"latest", nil, []AcquiredRange{{2, 3, 1}}},
	} {
		t.Run(tc.reset, func(t *testing.T) {
			cfg := earliest()
			cfg.AutoOffsetReset = tc.reset
			tm := newTestManager(t, cfg)
			tm.data.produce(t, 2)
			wantRanges(t, tm.acquire(t, "m1", 500), tc.first...)
			tm.data.produce(t, 2)
			wantRanges(t, tm.acquire(t, "m1", 500), tc.then...)
		})
	}
}

func TestReleaseMember(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 2)
	tm.acquire(t, "m1", 500)
	if err := tm.ReleaseMember(context.Background(), "g", "m1", tm.target); err != nil {
		t.Fatal(err)
	}
	wantRanges(t, tm.acquire(t, "m2", 500), AcquiredRange{0, 1, 2})
}

func TestNotLeader(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.leader = 3
	if _, err := tm.Acquire(context.Background(), "g", "m", tm.target, AcquireRequest{MaxRecords: 1}); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("acquire on a follower: %v", err)
	}
}

func TestSplitSpansSkipsControlAndAborted(t *testing.T) {
	batch := func(base int64, count int32, producer int64, attrs int16) []byte {
		h := log.BatchHeader{BaseOffset: base, LastOffsetDelta: count - 1, RecordCount: count, ProducerID: producer, ProducerEpoch: 0, BaseSequence: 0, Attributes: attrs, PartitionLeaderEpoch: 1}
		var section []byte
		for i := int32(0); i < count; i++ {
			section = record.AppendRecord(section, &record.Record{OffsetDelta: i, Value: []byte("v")})
		}
		b := log.AppendBatch(nil, h, section)
		log.SetCRC(b)
		return b
	}
	const txn, control = 0x10, 0x20
	var read []byte
	read = append(read, batch(0, 2, 7, txn)...)         // producer 7's aborted transaction
	read = append(read, batch(2, 1, -1, 0)...)          // plain
	read = append(read, batch(3, 1, 7, txn|control)...) // its ABORT marker
	read = append(read, batch(4, 1, 7, txn)...)         // its next transaction, not aborted
	spans, batches, err := splitSpans(read, []partition.AbortedTxn{{ProducerID: 7, FirstOffset: 0}})
	if err != nil {
		t.Fatal(err)
	}
	want := []span{{0, 1, true}, {2, 2, false}, {3, 3, true}, {4, 4, false}}
	if !reflect.DeepEqual(spans, want) || len(batches) != 4 || batches[3].end != len(read) {
		t.Fatalf("spans %+v batches %+v, want %+v", spans, batches, want)
	}
	// Under read_uncommitted (no aborted list) only the marker is skipped.
	spans, _, _ = splitSpans(read, nil)
	want = []span{{0, 1, false}, {2, 2, false}, {3, 3, true}, {4, 4, false}}
	if !reflect.DeepEqual(spans, want) {
		t.Fatalf("read_uncommitted spans %+v, want %+v", spans, want)
	}
}
