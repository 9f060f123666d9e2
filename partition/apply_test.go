package partition

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
)

// appliedState is everything Apply decides, for comparing replicas.
type appliedState struct {
	results   []AppendResult
	errs      []error
	log       []byte
	producers []byte // the snapshot encoding: canonical, ordered by id
	epochs    []epochEntry
	offsets   Offsets
}

// cloneEntry returns e with a copy of its batches: each replica applies
// (and stamps) bytes of its own.
func cloneEntry(e Entry) Entry {
	e.Batches = bytes.Clone(e.Batches)
	return e
}

// applyCopy applies a fresh copy of entry e to r, as each replica applies
// its own copy, recording the outcome in s. Only deterministic errors are
// allowed.
func (s *appliedState) applyCopy(t *testing.T, r *Replica, e Entry) {
	t.Helper()
	e.Batches = bytes.Clone(e.Batches)
	res, err := r.Apply(e)
	var ke *kerr.Error
	if err != nil && !errors.As(err, &ke) {
		t.Fatalf("Apply: a non-deterministic error: %v", err)
	}
	s.results = append(s.results, res)
	s.errs = append(s.errs, err)
}

// capture records r's state after the applies.
func (s *appliedState) capture(t *testing.T, r *Replica) {
	t.Helper()
	s.log, _ = readAll(t, r)
	s.producers = encodeSnapshot(nil, &snapshot{anchorBaseOffset: -1, entries: r.producers.entries})
	s.epochs = slices.Clone(r.epochs.load())
	s.offsets = r.Offsets()
}

// TestApplyDeterministic runs a leader through prepares, applies,
// leadership changes, a retry proposed twice and entries refused at
// apply, then applies the same entries to replicas in other directories
// and filesystems, with other clocks and topic configs, and requires the
// same results, log bytes, producer state and leader epochs.
func TestApplyDeterministic(t *testing.T) {
	const pid, other = 10, 20
	leaderEnv := newEnv(t)
	leaderEnv.cfg.TimestampType = LogAppendTime
	leader := leaderEnv.open(t)
	var (
		entries []Entry // in log order
		want    appliedState
		clock   = int64(1_700_000_000_000)
	)
	prepare := func(epoch int32, batches ...testBatch) Entry {
		t.Helper()
		clock += 1000
		leader.now = fixedClock(clock)
		e, dup, err := leader.Prepare(concat(t, batches...), epoch)
		if err != nil || dup.Duplicate {
			t.Fatalf("Prepare = %+v, %v", dup, err)
		}
		e.Batches = bytes.Clone(e.Batches) // the request's bytes are the caller's
		return e
	}
	commit := func(es ...Entry) {
		t.Helper()
		for _, e := range es {
			entries = append(entries, e)
			want.applyCopy(t, leader, e)
		}
	}

	p0 := prepare(3, idem(pid, 0, 0, 2))
	p1 := prepare(3, plain(3, 5), idem(other, 1, 0, 1))
	p2 := prepare(3, idem(pid, 0, 2, 1))
	commit(p0, p1)
	leader.ResetPending() // leadership lost and won back; p2 is still on its way
	p3 := prepare(4, idem(pid, 0, 2, 1))
	commit(p2, p3) // p3 is the retry proposed twice
	p4 := prepare(4, idem(pid, 0, 3, 2))
	p5 := prepare(4, idem(pid, 0, 5, 1))
	leader.ResetPending() // p4's proposal failed, p5's did not
	commit(p5)            // out of order without p4
	p6 := prepare(5, idem(pid, 1, 0, 1))
	commit(p6)
	commit(prepare(5, plain(1, 0)))
	commit(p4) // a stale proposal, fenced by the producer's new epoch
	want.capture(t, leader)

	followerA := &testEnv{fs: log.NewMemFS(), dir: "/a/topics/t-0", cfg: DefaultConfig(),
		opts: Options{Now: fixedClock(1)}}
	followerA.opts.FS = followerA.fs
	followerB := &testEnv{fs: log.NewMemFS(), dir: "/b/elsewhere/x-7", cfg: DefaultConfig(),
		opts: Options{Now: fixedClock(9_000_000_000_000)}}
	followerB.opts.FS = followerB.fs
	followerB.cfg.TimestampType = CreateTime // config is not replicated state
	followerB.cfg.MaxMessageBytes = log.BatchHeaderSize
	followerB.cfg.CleanupPolicy = CleanupCompact

	for name, env := range map[string]*testEnv{"follower A": followerA, "follower B": followerB} {
		t.Run(name, func(t *testing.T) {
			r := env.open(t)
			r.SetLeaderEpoch(99) // replication's current epoch plays no part
			var got appliedState
			for _, b := range entries {
				got.applyCopy(t, r, b)
			}
			got.capture(t, r)
			for i := range want.results {
				if got.results[i] != want.results[i] || got.errs[i] != want.errs[i] {
					t.Errorf("entry %d: %+v, %v; leader %+v, %v", i, got.results[i], got.errs[i], want.results[i], want.errs[i])
				}
			}
			if !bytes.Equal(got.log, want.log) {
				t.Errorf("log of %d bytes differs from the leader's %d", len(got.log), len(want.log))
			}
			if !bytes.Equal(got.producers, want.producers) {
				t.Errorf("producer state differs:\n got %x\nwant %x", got.producers, want.producers)
			}
			if !slices.Equal(got.epochs, want.epochs) || got.offsets != want.offsets {
				t.Errorf("epochs %v offsets %+v; leader %v %+v", got.epochs, got.offsets, want.epochs, want.offsets)
			}
		})
	}

	// And what they agree on is right.
	wantErrs := []error{nil, nil, nil, nil, kerr.OutOfOrderSequenceNumber, nil, nil, kerr.InvalidProducerEpoch}
	if !slices.Equal(want.errs, wantErrs) {
		t.Fatalf("errors %v, want %v", want.errs, wantErrs)
	}
	if dup := want.results[3]; !dup.Duplicate || dup.BaseOffset != 6 || dup.LastOffset != 6 || dup.LogAppendTime != want.results[2].LogAppendTime {
		t.Fatalf("the retry proposed twice: %+v, original %+v", dup, want.results[2])
	}
	if o := want.offsets; o.LogEnd != 9 || o.HighWatermark != 9 {
		t.Fatalf("offsets %+v", o)
	}
	_, headers := readAll(t, leader)
	wantEpochs := []int32{3, 3, 3, 3, 5, 5}
	if len(headers) != len(wantEpochs) {
		t.Fatalf("%d batches stored, want %d", len(headers), len(wantEpochs))
	}
	for i, h := range headers {
		if h.PartitionLeaderEpoch != wantEpochs[i] || !h.LogAppendTime() {
			t.Errorf("batch %d: leader epoch %d, LogAppendTime %v; want %d, true", i, h.PartitionLeaderEpoch, h.LogAppendTime(), wantEpochs[i])
		}
	}
	// Each batch has its leader's clock at Prepare, not at Apply.
	if first, last := headers[0].MaxTimestamp, headers[len(headers)-1].MaxTimestamp; first != 1_700_000_001_000 || last != clock {
		t.Errorf("append times %d ... %d, want %d ... %d", first, last, 1_700_000_001_000, clock)
	}
}

// TestApplyNeverReadsClock prepares on a replica, then applies with a
// clock that fails the test when called. The log below keeps the clock it
// was opened with, for its segment.ms roll check only.
func TestApplyNeverReadsClock(t *testing.T) {
	for _, timestampType := range []TimestampType{CreateTime, LogAppendTime} {
		t.Run(timestampType.String(), func(t *testing.T) {
			env := newEnv(t)
			env.cfg.TimestampType = timestampType
			env.cfg.TimestampBeforeMax = 24 * time.Hour // validate reads the clock for these
			env.cfg.TimestampAfterMax = 24 * time.Hour
			r := env.open(t)
			applying := false
			r.now = func() time.Time {
				if applying {
					t.Error("Apply read the clock")
				}
				return time.UnixMilli(1_700_000_000_000)
			}
			apply := func(e Entry) (AppendResult, error) {
				applying = true
				defer func() { applying = false }()
				return r.Apply(e)
			}
			prepare := func(batches ...testBatch) Entry {
				t.Helper()
				e, _, err := r.Prepare(concat(t, batches...), 1)
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			// Timestamps within the bounds of the clock.
			recent := func(tb testBatch) testBatch {
				for i := range tb.records {
					tb.records[i].timestamp = 1_700_000_000_000 + int64(i)
				}
				return tb
			}
			a := prepare(recent(idem(1, 0, 0, 2)), recent(idem(2, 0, 0, 1)))
			p := prepare(recent(plain(1, 0)))
			b := prepare(recent(idem(1, 0, 2, 1)))
			for _, e := range []Entry{a, p} {
				if _, err := apply(e); err != nil {
					t.Fatal(err)
				}
			}
			r.ResetPending()
			b2 := prepare(recent(idem(1, 0, 2, 1))) // proposed twice
			if _, err := apply(b); err != nil {
				t.Fatal(err)
			}
			for _, e := range []Entry{b2, a} {
				if res, err := apply(e); err != nil || !res.Duplicate {
					t.Fatalf("duplicate entry: %+v, %v", res, err)
				}
			}
			c := Entry{Batches: recent(idem(1, 0, 9, 1)).build(t), LogAppendTime: -1} // Prepare would refuse it
			if _, err := apply(c); err != kerr.OutOfOrderSequenceNumber {
				t.Fatalf("entry out of order: %v", err)
			}
			if _, err := apply(Entry{Batches: []byte("not a batch"), LogAppendTime: -1}); !errors.Is(err, ErrCorruptEntry) {
				t.Fatalf("corrupt entry: %v", err)
			}
			if o := r.Offsets(); o.LogEnd != 5 || o.HighWatermark != 5 {
				t.Fatalf("offsets %+v", o)
			}
		})
	}
}

func TestPrepareWritesNothing(t *testing.T) {
	r := newEnv(t).open(t)
	w := NewWaiter()
	r.Watch(w)
	b := concat(t, plain(2, 0), idem(1, 0, 0, 1))
	request := bytes.Clone(b)
	e, _, err := r.Prepare(b, 4)
	if err != nil {
		t.Fatal(err)
	}
	if o := r.Offsets(); o != (Offsets{}) || signalled(w) {
		t.Fatalf("Prepare moved offsets to %+v", o)
	}
	if !bytes.Equal(b, request) || &e.Batches[0] != &b[0] || len(e.Batches) != len(b) {
		t.Fatal("Prepare changed the request or did not alias it")
	}
	if e.LeaderEpoch != 4 || e.LogAppendTime != -1 {
		t.Fatalf("entry %+v", e)
	}
}

func TestPrepareApplyRejectsInvalid(t *testing.T) {
	r := newEnv(t).open(t)
	bad := plain(2, 0).build(t)
	bad[len(bad)-1] ^= 1
	if _, _, err := r.Prepare(bad, 0); err != kerr.CorruptMessage {
		t.Fatalf("Prepare of a corrupt batch: %v", err)
	}
	for name, e := range map[string]Entry{
		"empty":         {LogAppendTime: -1},
		"cut":           {Batches: plain(1, 0).build(t)[:70], LogAppendTime: -1},
		"time below -1": {Batches: plain(1, 0).build(t), LogAppendTime: -5},
	} {
		if _, err := r.Apply(e); !errors.Is(err, ErrCorruptEntry) {
			t.Errorf("Apply of %s entry: %v, want ErrCorruptEntry", name, err)
		}
	}
	if o := r.Offsets(); o.LogEnd != 0 {
		t.Fatalf("rejected entries wrote: %+v", o)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Prepare(plain(1, 0).build(t), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Prepare after Close: %v", err)
	}
	if _, err := r.Apply(Entry{Batches: plain(1, 0).build(t), LogAppendTime: -1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close: %v", err)
	}
}

// TestExternalHighWatermark checks that with ExternalHighWatermark the
// high watermark is the lowest of the owner's bound, the log end and, when
// durable, the synced offset.
func TestExternalHighWatermark(t *testing.T) {
	tests := []struct {
		name    string
		durable bool
		flusher bool
	}{
		{"not durable", false, false},
		{"durable, sync in Apply", true, false},
		{"durable, flusher", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			env.opts.ExternalHighWatermark = true
			env.opts.Durable = tt.durable
			var flusher *log.Flusher
			if tt.flusher {
				// A long interval: the first dirty round runs at once,
				// the next only when the Flusher closes.
				flusher = log.NewFlusher(log.FlushConfig{Interval: time.Hour}, nil)
				env.opts.Flusher = flusher
			}
			r := openQuiet(t, env)
			t.Cleanup(func() {
				_ = r.Close()
				if flusher != nil {
					_ = flusher.Close(context.Background())
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			apply := func(n int) AppendResult {
				t.Helper()
				res, err := r.Apply(Entry{Batches: plain(n, 0).build(t), LeaderEpoch: 1, LogAppendTime: -1})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			hwm := func(want int64) {
				t.Helper()
				if got := r.Offsets().HighWatermark; got != want {
					t.Fatalf("high watermark %d, want %d", got, want)
				}
			}

			first := apply(3)
			hwm(0) // applied, not yet committed by the owner
			w := NewWaiter()
			r.Watch(w)
			r.AdvanceHighWatermark(first.LastOffset + 1)
			if err := r.WaitCommitted(ctx, first.LastOffset); err != nil {
				t.Fatal(err)
			}
			hwm(3)
			if !signalled(w) {
				t.Fatal("waiter not signalled by AdvanceHighWatermark")
			}

			r.AdvanceHighWatermark(10) // ahead of the log: bounded by it
			second := apply(2)
			if tt.flusher {
				hwm(3) // not synced yet
				if err := flusher.Close(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.WaitCommitted(ctx, second.LastOffset); err != nil {
				t.Fatal(err)
			}
			hwm(5)
			r.AdvanceHighWatermark(4) // lower: ignored
			hwm(5)
			if !tt.flusher {
				apply(5) // up to the bound of 10 at once
				hwm(10)
				apply(1)
				hwm(10)
				r.AdvanceHighWatermark(11)
				hwm(11)
			}
		})
	}

	t.Run("without the option", func(t *testing.T) {
		r := newEnv(t).open(t)
		if _, err := r.Apply(Entry{Batches: plain(2, 0).build(t), LogAppendTime: -1}); err != nil {
			t.Fatal(err)
		}
		r.AdvanceHighWatermark(1)
		if o := r.Offsets(); o.HighWatermark != 2 {
			t.Fatalf("offsets %+v: the log drives the high watermark", o)
		}
	})
}

// TestExternalHighWatermarkConcurrent applies on one goroutine while
// another advances the bound, as replication's apply loop and commit
// notifications would, with a Flusher syncing on a third: no advance is
// lost. Run it with -race.
func TestExternalHighWatermarkConcurrent(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(map[bool]string{false: "not durable", true: "durable"}[durable], func(t *testing.T) {
			env := newEnv(t)
			env.opts.ExternalHighWatermark = true
			if durable {
				flusher := log.NewFlusher(log.FlushConfig{}, nil)
				env.opts.Flusher, env.opts.Durable = flusher, true
				t.Cleanup(func() { _ = flusher.Close(context.Background()) })
			}
			r := openQuiet(t, env)
			t.Cleanup(func() { _ = r.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			const n = 200
			committed := make(chan int64, n)
			go func() {
				defer close(committed)
				for range n {
					res, err := r.Apply(Entry{Batches: plain(1, 0).build(t), LeaderEpoch: 1, LogAppendTime: -1})
					if err != nil {
						t.Error(err)
						return
					}
					committed <- res.LastOffset + 1
				}
			}()
			done := make(chan struct{})
			go func() {
				defer close(done)
				for offset := range committed {
					r.AdvanceHighWatermark(offset)
				}
			}()
			if err := r.WaitCommitted(ctx, n-1); err != nil {
				t.Fatal(err)
			}
			<-done
			if o := r.Offsets(); o.HighWatermark != n || o.LogEnd != n {
				t.Fatalf("offsets %+v", o)
			}
		})
	}
}
