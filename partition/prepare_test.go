package partition

import (
	"bytes"
	"errors"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// pipelineStep is one step of a leader's produce pipeline script: a
// Prepare, the Apply of an entry prepared earlier, a ResetPending, an
// Append, or a check of the replica's state.
type pipelineStep struct {
	op      string // "prepare", "apply", "reset", "append", "state"
	epoch   int32  // prepare: the leader epoch
	batches []testBatch
	entry   int // apply: which prepared entry, counted from 0 in prepare order

	wantErr            error
	wantDup            bool
	wantBase, wantLast int64
	wantLogEnd         int64 // state
	wantInFlight       int   // state
}

func prep(epoch int32, batches ...testBatch) pipelineStep {
	return pipelineStep{op: "prepare", epoch: epoch, batches: batches}
}

func prepErr(err error, epoch int32, batches ...testBatch) pipelineStep {
	return pipelineStep{op: "prepare", epoch: epoch, batches: batches, wantErr: err}
}

func prepDup(base, last int64, epoch int32, batches ...testBatch) pipelineStep {
	return pipelineStep{op: "prepare", epoch: epoch, batches: batches, wantDup: true, wantBase: base, wantLast: last}
}

func applyOK(entry int, base, last int64) pipelineStep {
	return pipelineStep{op: "apply", entry: entry, wantBase: base, wantLast: last}
}

func applyDup(entry int, base, last int64) pipelineStep {
	return pipelineStep{op: "apply", entry: entry, wantDup: true, wantBase: base, wantLast: last}
}

func applyErr(entry int, err error) pipelineStep {
	return pipelineStep{op: "apply", entry: entry, wantErr: err}
}

func appendErr(err error, batches ...testBatch) pipelineStep {
	return pipelineStep{op: "append", batches: batches, wantErr: err}
}

func resetPending() pipelineStep { return pipelineStep{op: "reset"} }

func state(logEnd int64, inFlight int) pipelineStep {
	return pipelineStep{op: "state", wantLogEnd: logEnd, wantInFlight: inFlight}
}

// runPipeline runs steps against r. Prepared entries travel as Raft would
// carry them: encoded, and decoded afresh for each Apply.
func runPipeline(t *testing.T, r *Replica, steps []pipelineStep) {
	t.Helper()
	var prepared []Entry
	for i, s := range steps {
		var (
			res AppendResult
			err error
		)
		switch s.op {
		case "prepare":
			var e Entry
			e, res, err = r.Prepare(concat(t, s.batches...), s.epoch)
			if err == nil && !res.Duplicate {
				if e.LeaderEpoch != s.epoch {
					t.Fatalf("step %d: entry of epoch %d, want %d", i, e.LeaderEpoch, s.epoch)
				}
				prepared = append(prepared, cloneEntry(e))
				// A prepared entry is not a result: compare nothing more.
				if s.wantDup || s.wantErr != nil {
					t.Fatalf("step %d: prepared entry %d, want duplicate %v, err %v", i, len(prepared)-1, s.wantDup, s.wantErr)
				}
				continue
			}
		case "apply":
			res, err = r.Apply(cloneEntry(prepared[s.entry]))
		case "append":
			res, err = r.Append(concat(t, s.batches...))
		case "reset":
			r.ResetPending()
			continue
		case "state":
			if end := r.Offsets().LogEnd; end != s.wantLogEnd {
				t.Fatalf("step %d: log end %d, want %d", i, end, s.wantLogEnd)
			}
			if n := r.InFlight(); n != s.wantInFlight {
				t.Fatalf("step %d: %d batches in flight, want %d", i, n, s.wantInFlight)
			}
			continue
		default:
			t.Fatalf("step %d: unknown op %q", i, s.op)
		}
		switch {
		case s.wantErr != nil:
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("step %d (%s): err = %v, want %v", i, s.op, err, s.wantErr)
			}
		case err != nil:
			t.Fatalf("step %d (%s): %v", i, s.op, err)
		case res.BaseOffset != s.wantBase || res.LastOffset != s.wantLast || res.Duplicate != s.wantDup:
			t.Fatalf("step %d (%s): got %+v, want [%d, %d] duplicate %v", i, s.op, res, s.wantBase, s.wantLast, s.wantDup)
		}
	}
}

func TestPrepareApply(t *testing.T) {
	const pid, other = 1000, 2000
	a := idem(pid, 0, 0, 2) // sequences 0-1
	b := idem(pid, 0, 2, 3) // 2-4
	c := idem(pid, 0, 5, 1) // 5
	tests := []struct {
		name  string
		steps []pipelineStep
	}{
		{"pipelined requests pass while earlier ones fly", []pipelineStep{
			prep(1, a), prep(1, b), prep(1, plain(2, 0)), prep(1, c),
			state(0, 3),
			applyOK(0, 0, 1), state(2, 2),
			applyOK(1, 2, 4), applyOK(2, 5, 6), applyOK(3, 7, 7),
			state(8, 0),
		}},
		{"sequences are checked against the forecast", []pipelineStep{
			prep(1, a),
			prepErr(kerr.OutOfOrderSequenceNumber, 1, c),                  // gap after 1
			prepErr(kerr.OutOfOrderSequenceNumber, 1, idem(pid, 0, 1, 1)), // overlaps a
			prepErr(kerr.OutOfOrderSequenceNumber, 1, idem(other, 0, 3, 1)),
			prep(1, b),
			state(0, 2),
		}},
		{"retry of a batch in flight", []pipelineStep{
			prep(1, a),
			prepErr(ErrInFlight, 1, a),
			prepErr(kerr.RequestTimedOut, 1, a), // what the client sees
			applyOK(0, 0, 1),
			prepDup(0, 1, 1, a),
			state(2, 0),
		}},
		{"retry of an applied batch while later ones fly", []pipelineStep{
			prep(1, a), prep(1, b),
			applyOK(0, 0, 1),
			prepDup(0, 1, 1, a), // from the forecast, with the offsets a got
			prepErr(ErrInFlight, 1, b),
			applyOK(1, 2, 4),
			prepDup(2, 4, 1, b),
			prepDup(0, 1, 1, a),
		}},
		{"retries of applied and in-flight batches together", []pipelineStep{
			prep(1, a), prep(1, b),
			applyOK(0, 0, 1),
			prepErr(ErrInFlight, 1, a, b),
			prepErr(kerr.InvalidRecord, 1, b, c), // a retry and a new batch
			prep(1, c),
			state(2, 2),
		}},
		{"a retry proposed twice is skipped at apply", []pipelineStep{
			prep(1, a),
			resetPending(), // say, the proposal timed out
			prep(1, a),     // the client's retry is proposed again
			state(0, 1),
			applyOK(0, 0, 1),
			applyDup(1, 0, 1), // nothing written, the original offsets
			state(2, 0),
			prep(1, b), applyOK(2, 2, 4),
		}},
		{"apply refuses out of order and forgets the forecast", []pipelineStep{
			prep(1, a), prep(1, b),
			applyErr(1, kerr.OutOfOrderSequenceNumber), // b before a
			state(0, 0),
			prepErr(kerr.OutOfOrderSequenceNumber, 1, b), // against the applied state
			applyOK(0, 0, 1),
			prep(1, b), applyOK(2, 2, 4),
			state(5, 0),
		}},
		{"apply refuses a batch fenced by an epoch applied before it", []pipelineStep{
			prep(1, a),
			resetPending(),
			prep(1, idem(pid, 1, 0, 1)), // the producer bumped its epoch
			applyOK(1, 0, 0),
			applyErr(0, kerr.InvalidProducerEpoch),
			state(1, 0),
		}},
		{"producer epoch bump in flight fences the old epoch", []pipelineStep{
			prep(1, a), applyOK(0, 0, 1),
			prep(1, idem(pid, 1, 0, 1)),
			prepErr(kerr.InvalidProducerEpoch, 1, idem(pid, 0, 2, 1)),
			prepErr(kerr.InvalidProducerEpoch, 1, a), // even a retry
			prepErr(kerr.OutOfOrderSequenceNumber, 1, idem(pid, 2, 1, 1)),
			prep(1, idem(pid, 1, 1, 1)),
			applyOK(1, 2, 2), applyOK(2, 3, 3),
			prepErr(kerr.InvalidProducerEpoch, 1, idem(pid, 0, 2, 1)),
			state(4, 0),
		}},
		{"leader epoch fences a stale prepare and a new one drops the forecast", []pipelineStep{
			prep(5, a),
			prepErr(kerr.NotLeaderForPartition, 4, b),
			state(0, 1),
			prep(6, a), // epoch 5's forecast is gone: a is no longer in flight
			state(0, 1),
			prep(6, b),
			applyOK(0, 0, 1),  // epoch 5's entry committed after all
			applyDup(1, 0, 1), // and epoch 6's copy of a is skipped
			applyOK(2, 2, 4),
			state(5, 0),
		}},
		{"reset pending: the dropped entries never apply", []pipelineStep{
			prep(1, a), prep(1, b),
			resetPending(),
			state(0, 0),
			prepErr(kerr.OutOfOrderSequenceNumber, 1, b), // b followed a's forecast
			prep(1, a),
			prepErr(ErrInFlight, 1, a),
			prep(1, b),
			applyOK(2, 0, 1), applyOK(3, 2, 4),
			state(5, 0),
		}},
		{"reset pending: the dropped entries apply after all", []pipelineStep{
			prep(1, a), prep(1, b),
			resetPending(),
			prep(1, a),
			applyOK(0, 0, 1), applyOK(1, 2, 4),
			applyDup(2, 0, 1),
			state(5, 0),
		}},
		{"Append sees batches in flight", []pipelineStep{
			prep(1, a),
			appendErr(ErrInFlight, a),
			applyOK(0, 0, 1),
			pipelineStep{op: "append", batches: []testBatch{a}, wantDup: true, wantBase: 0, wantLast: 1},
		}},
		{"producers are independent", []pipelineStep{
			prep(1, a), prep(1, idem(other, 3, 0, 1)), prep(1, b),
			prepErr(ErrInFlight, 1, idem(other, 3, 0, 1)),
			applyOK(0, 0, 1), applyOK(1, 2, 2), applyOK(2, 3, 5),
			state(6, 0),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runPipeline(t, newEnv(t).open(t), tt.steps)
		})
	}
}

// TestPrepareApplyMatchesAppend drives two replicas with the same random
// requests (producers, epochs, in-order, retried, gapped and overlapping
// sequences, plain batches, several batches a request): one through
// Append, one through Prepare then Apply. Every answer, the logs and the
// producer state must agree.
func TestPrepareApplyMatchesAppend(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		byAppend, byEntry := newEnv(t).open(t), newEnv(t).open(t)
		next := map[int64]int32{} // a plausible next sequence per producer
		epochs := map[int64]int16{}
		for i := range 200 {
			var batches []testBatch
			tentative := maps.Clone(next) // kept if the request is accepted
			for range 1 + rng.IntN(2) {
				pid := int64(rng.IntN(3))
				if rng.IntN(5) == 0 {
					batches = append(batches, plain(1+rng.IntN(3), 0))
					continue
				}
				if rng.IntN(20) == 0 {
					epochs[pid]++
					tentative[pid] = 0
				}
				seq := tentative[pid]
				switch rng.IntN(6) {
				case 0:
					seq -= int32(rng.IntN(4)) // a retry, or an overlap
				case 1:
					seq += int32(rng.IntN(3)) // a gap, or in order
				}
				n := 1 + rng.IntN(3)
				batches = append(batches, idem(pid, epochs[pid], max(seq, 0), n))
				tentative[pid] = max(seq, 0) + int32(n)
			}
			want, wantErr := byAppend.Append(concat(t, batches...))
			if wantErr == nil && !want.Duplicate {
				next = tentative
			}

			got, gotErr := func() (AppendResult, error) {
				e, dup, err := byEntry.Prepare(concat(t, batches...), 0)
				if err != nil || dup.Duplicate {
					return dup, err
				}
				return byEntry.Apply(e)
			}()
			if got != want || gotErr != wantErr {
				t.Fatalf("seed %d request %d: Prepare+Apply %+v, %v; Append %+v, %v", seed, i, got, gotErr, want, wantErr)
			}
		}
		a, _ := readAll(t, byAppend)
		b, _ := readAll(t, byEntry)
		if !bytes.Equal(a, b) || !maps.Equal(byAppend.producers.entries, byEntry.producers.entries) {
			t.Fatalf("seed %d: logs or producer states differ", seed)
		}
		if n := byEntry.InFlight(); n != 0 {
			t.Fatalf("seed %d: %d batches left in flight", seed, n)
		}
	}
}

// TestPipelineNeverWritesDuplicates drives a leader with random
// pipelines: clients sending new batches and retries, entries applied in
// log order, proposed twice, lost, and the overlay reset. Whatever the
// overlay forecast, the log must hold each producer's batches in exact
// sequence (so never a duplicate) with epochs that never go back, and a
// follower applying the same entries must end byte-identical.
func TestPipelineNeverWritesDuplicates(t *testing.T) {
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 11))
		leader, follower := newEnv(t).open(t), newEnv(t).open(t)
		var (
			queue   []Entry // proposed, not yet applied: the Raft log's tail
			applied []Entry
			sent    = map[int64][]testBatch{} // each producer's latest batches
			next    = map[int64]int32{}
			epochs  = map[int64]int16{}
			epoch   = int32(1)
		)
		applyNext := func() {
			b := queue[0]
			queue = queue[1:]
			if _, err := leader.Apply(cloneEntry(b)); err != nil {
				var ke *kerr.Error
				if !errors.As(err, &ke) {
					t.Fatalf("seed %d: Apply: %v", seed, err)
				}
			}
			applied = append(applied, b)
		}
		for range 600 {
			switch op := rng.IntN(20); {
			case op < 10: // a request
				pid := int64(rng.IntN(3))
				var tb testBatch
				switch history := sent[pid]; {
				case len(history) > 0 && rng.IntN(4) == 0:
					tb = history[rng.IntN(len(history))] // a retry
				case rng.IntN(25) == 0:
					epochs[pid]++
					next[pid] = 0
					fallthrough
				default:
					tb = idem(pid, epochs[pid], next[pid], 1+rng.IntN(3))
				}
				e, _, err := leader.Prepare(tb.build(t), epoch)
				switch {
				case err == nil && e.Batches != nil:
					queue = append(queue, cloneEntry(e))
					if tb.baseSequence == next[pid] && tb.producerEpoch == epochs[pid] {
						next[pid] += int32(len(tb.records))
						sent[pid] = append(sent[pid], tb)
						if len(sent[pid]) > 5 {
							sent[pid] = sent[pid][1:]
						}
					}
				case err == kerr.OutOfOrderSequenceNumber:
					// The client resyncs from what was applied.
					if pe, ok := leader.producers.entries[pid]; ok && pe.epoch == epochs[pid] {
						next[pid] = pe.lastSequence() + 1
					}
				}
			case op < 16 && len(queue) > 0:
				applyNext()
			case op == 16 && len(applied) > 0: // a proposal made twice
				queue = append(queue, applied[rng.IntN(len(applied))])
			case op == 17 && len(queue) > 0: // a proposal lost with leadership
				queue = queue[1:]
				leader.ResetPending()
				epoch++
			case op == 18:
				leader.ResetPending()
			}
		}
		for len(queue) > 0 {
			applyNext()
		}

		// Every producer's batches are in exact sequence per epoch, and
		// epochs never go back.
		_, headers := readAll(t, leader)
		type state struct {
			epoch int16
			next  int32
		}
		seen := map[int64]state{}
		for _, h := range headers {
			s, ok := seen[h.ProducerID]
			switch {
			case !ok || h.ProducerEpoch > s.epoch:
				if h.BaseSequence != 0 {
					t.Fatalf("seed %d: producer %d epoch %d starts at sequence %d", seed, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
				}
			case h.ProducerEpoch < s.epoch:
				t.Fatalf("seed %d: producer %d epoch %d after %d", seed, h.ProducerID, h.ProducerEpoch, s.epoch)
			case h.BaseSequence != s.next:
				t.Fatalf("seed %d: producer %d sequence %d at offset %d, want %d", seed, h.ProducerID, h.BaseSequence, h.BaseOffset, s.next)
			}
			seen[h.ProducerID] = state{h.ProducerEpoch, h.LastSequence() + 1}
		}
		if len(headers) < 50 {
			t.Fatalf("seed %d: only %d batches written", seed, len(headers))
		}

		for _, b := range applied {
			_, _ = follower.Apply(cloneEntry(b))
		}
		l, _ := readAll(t, leader)
		f, _ := readAll(t, follower)
		if !bytes.Equal(l, f) || !maps.Equal(leader.producers.entries, follower.producers.entries) {
			t.Fatalf("seed %d: follower differs from leader", seed)
		}
	}
}

// TestPrepareDuplicateLogAppendTime checks that a retry answered by
// Prepare, from the applied state or from the forecast, carries the
// original append time, not the clock at the retry.
func TestPrepareDuplicateLogAppendTime(t *testing.T) {
	env := newEnv(t)
	env.cfg.TimestampType = LogAppendTime
	r := env.open(t)
	a, b := idem(1, 0, 0, 2), idem(1, 0, 2, 1)
	prepare := func(tb testBatch, ms int64) (Entry, AppendResult, error) {
		r.now = fixedClock(ms)
		return r.Prepare(tb.build(t), 1)
	}
	ea, _, err := prepare(a, 1000)
	if err != nil || ea.LogAppendTime != 1000 {
		t.Fatalf("Prepare = %+v, %v", ea, err)
	}
	eb, _, err := prepare(b, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := r.Apply(ea); err != nil || res.LogAppendTime != 1000 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	// a from the forecast (b still in flight), then from the applied state.
	for _, step := range []func(){func() {}, func() { _, _ = r.Apply(eb) }} {
		step()
		_, dup, err := prepare(a, 5000)
		if err != nil || !dup.Duplicate || dup.BaseOffset != 0 || dup.LastOffset != 1 || dup.LogAppendTime != 1000 {
			t.Fatalf("retry: %+v, %v", dup, err)
		}
	}
	if _, dup, err := prepare(b, 6000); err != nil || dup.LogAppendTime != 2000 || dup.BaseOffset != 2 {
		t.Fatalf("retry of b: %+v, %v", dup, err)
	}
}
