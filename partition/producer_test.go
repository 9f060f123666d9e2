package partition

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// produceStep is one Append of an idempotence script and what it must
// answer.
type produceStep struct {
	batches    []testBatch
	wantErr    *kerr.Error
	wantBase   int64
	wantLast   int64
	wantDup    bool
	wantLogEnd int64 // log end offset after the step
}

func ok(base, last, logEnd int64, batches ...testBatch) produceStep {
	return produceStep{batches: batches, wantBase: base, wantLast: last, wantLogEnd: logEnd}
}

func dup(base, last, logEnd int64, batches ...testBatch) produceStep {
	return produceStep{batches: batches, wantBase: base, wantLast: last, wantDup: true, wantLogEnd: logEnd}
}

func fail(code *kerr.Error, logEnd int64, batches ...testBatch) produceStep {
	return produceStep{batches: batches, wantErr: code, wantLogEnd: logEnd}
}

func runProduceScript(t *testing.T, r *Replica, steps []produceStep) {
	t.Helper()
	for i, s := range steps {
		res, err := r.Append(concat(t, s.batches...))
		switch {
		case s.wantErr != nil:
			if err != s.wantErr {
				t.Fatalf("step %d: err = %v, want %v", i, err, s.wantErr)
			}
		case err != nil:
			t.Fatalf("step %d: %v", i, err)
		case res.BaseOffset != s.wantBase || res.LastOffset != s.wantLast || res.Duplicate != s.wantDup:
			t.Fatalf("step %d: got %+v, want [%d, %d] duplicate %v", i, res, s.wantBase, s.wantLast, s.wantDup)
		}
		if end := r.Offsets().LogEnd; end != s.wantLogEnd {
			t.Fatalf("step %d: log end %d, want %d", i, end, s.wantLogEnd)
		}
	}
}

func TestIdempotentProducer(t *testing.T) {
	const pid, other = 1000, 2000
	tests := []struct {
		name  string
		steps []produceStep
	}{
		{"in order", []produceStep{
			ok(0, 1, 2, idem(pid, 0, 0, 2)),
			ok(2, 4, 5, idem(pid, 0, 2, 3)),
			ok(5, 5, 6, idem(pid, 0, 5, 1)),
		}},
		{"duplicate retry returns original offsets", []produceStep{
			ok(0, 1, 2, idem(pid, 0, 0, 2)),
			ok(2, 3, 4, plain(2, 0)),
			ok(4, 5, 6, idem(pid, 0, 2, 2)),
			dup(0, 1, 6, idem(pid, 0, 0, 2)),
			dup(4, 5, 6, idem(pid, 0, 2, 2)),
			ok(6, 6, 7, idem(pid, 0, 4, 1)),
		}},
		{"duplicate within the window of five", []produceStep{
			ok(0, 0, 1, idem(pid, 0, 0, 1)),
			ok(1, 1, 2, idem(pid, 0, 1, 1)),
			ok(2, 2, 3, idem(pid, 0, 2, 1)),
			ok(3, 3, 4, idem(pid, 0, 3, 1)),
			ok(4, 4, 5, idem(pid, 0, 4, 1)),
			dup(0, 0, 5, idem(pid, 0, 0, 1)),
		}},
		{"retry older than the window is out of order", []produceStep{
			ok(0, 0, 1, idem(pid, 0, 0, 1)),
			ok(1, 1, 2, idem(pid, 0, 1, 1)),
			ok(2, 2, 3, idem(pid, 0, 2, 1)),
			ok(3, 3, 4, idem(pid, 0, 3, 1)),
			ok(4, 4, 5, idem(pid, 0, 4, 1)),
			ok(5, 5, 6, idem(pid, 0, 5, 1)),
			fail(kerr.OutOfOrderSequenceNumber, 6, idem(pid, 0, 0, 1)),
			dup(1, 1, 6, idem(pid, 0, 1, 1)),
		}},
		{"gap", []produceStep{
			ok(0, 0, 1, idem(pid, 0, 0, 1)),
			fail(kerr.OutOfOrderSequenceNumber, 1, idem(pid, 0, 2, 1)),
			ok(1, 1, 2, idem(pid, 0, 1, 1)),
		}},
		{"overlapping range is not a duplicate", []produceStep{
			ok(0, 1, 2, idem(pid, 0, 0, 2)),
			fail(kerr.OutOfOrderSequenceNumber, 2, idem(pid, 0, 1, 1)),
			fail(kerr.OutOfOrderSequenceNumber, 2, idem(pid, 0, 0, 3)),
		}},
		{"unknown producer must start at zero", []produceStep{
			fail(kerr.OutOfOrderSequenceNumber, 0, idem(pid, 0, 5, 1)),
			fail(kerr.OutOfOrderSequenceNumber, 0, idem(pid, 0, -1, 1)),
			ok(0, 0, 1, idem(pid, 0, 0, 1)),
		}},
		{"epoch bump resets sequences", []produceStep{
			ok(0, 1, 2, idem(pid, 0, 0, 2)),
			fail(kerr.OutOfOrderSequenceNumber, 2, idem(pid, 1, 2, 1)),
			ok(2, 2, 3, idem(pid, 1, 0, 1)),
			ok(3, 3, 4, idem(pid, 1, 1, 1)),
			// The old epoch's batches are forgotten: its retry is fenced.
			fail(kerr.InvalidProducerEpoch, 4, idem(pid, 0, 0, 2)),
		}},
		{"fenced lower epoch", []produceStep{
			ok(0, 0, 1, idem(pid, 3, 0, 1)),
			fail(kerr.InvalidProducerEpoch, 1, idem(pid, 2, 1, 1)),
			fail(kerr.InvalidProducerEpoch, 1, idem(pid, 2, 0, 1)),
			ok(1, 1, 2, idem(pid, 3, 1, 1)),
		}},
		{"producers are independent", []produceStep{
			ok(0, 0, 1, idem(pid, 0, 0, 1)),
			ok(1, 2, 3, idem(other, 5, 0, 2)),
			ok(3, 3, 4, idem(pid, 0, 1, 1)),
			fail(kerr.OutOfOrderSequenceNumber, 4, idem(other, 5, 1, 1)),
			ok(4, 4, 5, idem(other, 5, 2, 1)),
		}},
		{"multi-batch request checks in order", []produceStep{
			ok(0, 2, 3, idem(pid, 0, 0, 2), idem(pid, 0, 2, 1)),
			ok(3, 5, 6, idem(pid, 0, 3, 1), idem(other, 0, 0, 1), idem(pid, 0, 4, 1)),
			fail(kerr.OutOfOrderSequenceNumber, 6, idem(pid, 0, 5, 1), idem(pid, 0, 7, 1)),
			// Nothing of the rejected request was kept: 5 is still next.
			ok(6, 6, 7, idem(pid, 0, 5, 1)),
			fail(kerr.OutOfOrderSequenceNumber, 7, idem(other, 0, 1, 1), idem(other, 0, 3, 1)),
		}},
		{"multi-batch duplicates", []produceStep{
			ok(0, 2, 3, idem(pid, 0, 0, 2), idem(pid, 0, 2, 1)),
			dup(0, 2, 3, idem(pid, 0, 0, 2), idem(pid, 0, 2, 1)),
			fail(kerr.InvalidRecord, 3, idem(pid, 0, 2, 1), idem(pid, 0, 3, 1)),
			fail(kerr.InvalidRecord, 3, idem(pid, 0, 3, 1), idem(pid, 0, 3, 1)),
			ok(3, 3, 4, idem(pid, 0, 3, 1)),
		}},
		{"epoch bump within a request", []produceStep{
			ok(0, 0, 1, idem(pid, 0, 0, 1)),
			ok(1, 2, 3, idem(pid, 0, 1, 1), idem(pid, 1, 0, 1)),
			fail(kerr.InvalidProducerEpoch, 3, idem(pid, 1, 1, 1), idem(pid, 0, 2, 1)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newEnv(t).open(t)
			runProduceScript(t, r, tt.steps)
		})
	}
}

func TestSequenceWraparound(t *testing.T) {
	const pid = 7
	tests := []struct {
		name    string
		lastSeq int32 // the producer's last sequence before the script
		steps   []produceStep
	}{
		{"batch ends at max int32", math.MaxInt32 - 2, []produceStep{
			ok(0, 1, 2, idem(pid, 0, math.MaxInt32-1, 2)),
			fail(kerr.OutOfOrderSequenceNumber, 2, idem(pid, 0, 1, 1)),
			ok(2, 2, 3, idem(pid, 0, 0, 1)),
			dup(0, 1, 3, idem(pid, 0, math.MaxInt32-1, 2)),
		}},
		{"batch wraps inside", math.MaxInt32 - 1, []produceStep{
			ok(0, 2, 3, idem(pid, 0, math.MaxInt32, 3)), // sequences max, 0, 1
			ok(3, 3, 4, idem(pid, 0, 2, 1)),
			dup(0, 2, 4, idem(pid, 0, math.MaxInt32, 3)),
		}},
		{"next after max is zero only", math.MaxInt32, []produceStep{
			fail(kerr.OutOfOrderSequenceNumber, 0, idem(pid, 0, 1, 1)),
			ok(0, 0, 1, idem(pid, 0, 0, 1)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newEnv(t).open(t)
			e := producerEntry{epoch: 0}
			e.add(batchMetadata{firstSequence: tt.lastSeq, lastSequence: tt.lastSeq, baseOffset: -10, lastOffset: -10})
			r.producers.entries[pid] = e
			runProduceScript(t, r, tt.steps)
		})
	}
}

func TestInSequence(t *testing.T) {
	tests := []struct {
		last, next int32
		want       bool
	}{
		{0, 1, true},
		{0, 2, false},
		{5, 5, false},
		{math.MaxInt32 - 1, math.MaxInt32, true},
		{math.MaxInt32, 0, true},
		{math.MaxInt32, math.MinInt32, false},
		{-1, 0, true},
	}
	for _, tt := range tests {
		if got := inSequence(tt.last, tt.next); got != tt.want {
			t.Errorf("inSequence(%d, %d) = %v, want %v", tt.last, tt.next, got, tt.want)
		}
	}
}
