package sharestate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestWriteState(t *testing.T) {
	base := State{StateEpoch: 1, LeaderEpoch: 5, StartOffset: 100, Batches: []Batch{
		{First: 100, Last: 109, State: Acknowledged, DeliveryCount: 1},
		{First: 110, Last: 119, State: Available, DeliveryCount: 2},
		{First: 130, Last: 139, State: Archived, DeliveryCount: 5},
	}}
	for _, tc := range []struct {
		name    string
		w       Write
		want    State
		wantErr *kerr.Error
	}{
		{
			name: "a range inside a batch splits it",
			w:    Write{StateEpoch: 1, LeaderEpoch: 5, StartOffset: -1, Batches: []Batch{{First: 112, Last: 114, State: Acknowledged, DeliveryCount: 2}}},
			want: State{StateEpoch: 1, LeaderEpoch: 5, StartOffset: 100, Batches: []Batch{
				{First: 100, Last: 109, State: Acknowledged, DeliveryCount: 1},
				{First: 110, Last: 111, State: Available, DeliveryCount: 2},
				{First: 112, Last: 114, State: Acknowledged, DeliveryCount: 2},
				{First: 115, Last: 119, State: Available, DeliveryCount: 2},
				{First: 130, Last: 139, State: Archived, DeliveryCount: 5},
			}},
		},
		{
			name: "a range across batches and a gap replaces all of them",
			w:    Write{StateEpoch: 1, LeaderEpoch: 5, StartOffset: -1, Batches: []Batch{{First: 105, Last: 134, State: Available, DeliveryCount: 3}}},
			want: State{StateEpoch: 1, LeaderEpoch: 5, StartOffset: 100, Batches: []Batch{
				{First: 100, Last: 104, State: Acknowledged, DeliveryCount: 1},
				{First: 105, Last: 134, State: Available, DeliveryCount: 3},
				{First: 135, Last: 139, State: Archived, DeliveryCount: 5},
			}},
		},
		{
			name: "neighbours in the same state join",
			w:    Write{StateEpoch: 1, LeaderEpoch: 6, StartOffset: -1, Batches: []Batch{{First: 110, Last: 119, State: Acknowledged, DeliveryCount: 1}}},
			want: State{StateEpoch: 1, LeaderEpoch: 6, StartOffset: 100, Batches: []Batch{
				{First: 100, Last: 119, State: Acknowledged, DeliveryCount: 1},
				{First: 130, Last: 139, State: Archived, DeliveryCount: 5},
			}},
		},
		{
			name: "available and never delivered is not stored",
			w:    Write{StateEpoch: 1, LeaderEpoch: 5, StartOffset: -1, Batches: []Batch{{First: 130, Last: 135, State: Available}}},
			want: State{StateEpoch: 1, LeaderEpoch: 5, StartOffset: 100, Batches: []Batch{
				{First: 100, Last: 109, State: Acknowledged, DeliveryCount: 1},
				{First: 110, Last: 119, State: Available, DeliveryCount: 2},
				{First: 136, Last: 139, State: Archived, DeliveryCount: 5},
			}},
		},
		{
			name: "the start offset drops old batches and cuts one across it",
			w:    Write{StateEpoch: 1, LeaderEpoch: 5, StartOffset: 115},
			want: State{StateEpoch: 1, LeaderEpoch: 5, StartOffset: 115, Batches: []Batch{
				{First: 115, Last: 119, State: Available, DeliveryCount: 2},
				{First: 130, Last: 139, State: Archived, DeliveryCount: 5},
			}},
		},
		{
			name: "the start offset past every batch leaves none",
			w:    Write{StateEpoch: 1, LeaderEpoch: 5, StartOffset: 140, Batches: []Batch{{First: 120, Last: 125, State: Acknowledged, DeliveryCount: 1}}},
			want: State{StateEpoch: 1, LeaderEpoch: 5, StartOffset: 140},
		},
		{
			name:    "another state epoch is fenced",
			w:       Write{StateEpoch: 2, LeaderEpoch: 5, StartOffset: -1},
			wantErr: kerr.FencedStateEpoch,
		},
		{
			name:    "an older state epoch is fenced",
			w:       Write{StateEpoch: 0, LeaderEpoch: 5, StartOffset: -1},
			wantErr: kerr.FencedStateEpoch,
		},
		{
			name:    "an older leader epoch is fenced",
			w:       Write{StateEpoch: 1, LeaderEpoch: 4, StartOffset: -1},
			wantErr: kerr.FencedLeaderEpoch,
		},
		{
			name:    "overlapping batches are refused",
			w:       Write{StateEpoch: 1, LeaderEpoch: 5, StartOffset: -1, Batches: []Batch{{First: 1, Last: 5, State: Archived}, {First: 5, Last: 6, State: Archived}}},
			wantErr: kerr.InvalidRequest,
		},
		{
			name:    "acquired is never stored",
			w:       Write{StateEpoch: 1, LeaderEpoch: 5, StartOffset: -1, Batches: []Batch{{First: 1, Last: 5, State: 1}}},
			wantErr: kerr.InvalidRequest,
		},
		{
			name:    "an empty batch is refused",
			w:       Write{StateEpoch: 1, LeaderEpoch: 5, StartOffset: -1, Batches: []Batch{{First: 6, Last: 5, State: Archived}}},
			wantErr: kerr.InvalidRequest,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := base.clone()
			got, err := writeState(base, tc.w)
			if !reflect.DeepEqual(base, before) {
				t.Fatalf("writeState changed its input: %+v", base)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if err := got.check(); err != nil {
				t.Fatalf("result breaks the invariants: %v", err)
			}
		})
	}
}

func TestWriteStateUninitializedIsFenced(t *testing.T) {
	if _, err := writeState(uninitialized, Write{StateEpoch: -1, LeaderEpoch: 0, StartOffset: 0}); !errors.Is(err, kerr.FencedStateEpoch) {
		t.Fatalf("write on an uninitialized key: %v, want FENCED_STATE_EPOCH", err)
	}
}

func TestInitializeState(t *testing.T) {
	stored := State{StateEpoch: 3, LeaderEpoch: 7, StartOffset: 10, Batches: []Batch{{First: 10, Last: 12, State: Acknowledged, DeliveryCount: 1}}}
	for _, tc := range []struct {
		name       string
		s          State
		epoch      int32
		start      int64
		want       State
		wantErr    *kerr.Error
		wantChange bool
	}{
		{name: "new key", s: uninitialized, epoch: 0, start: 42, want: State{StateEpoch: 0, LeaderEpoch: -1, StartOffset: 42}},
		{name: "new key, start unknown", s: uninitialized, epoch: 0, start: -1, want: State{StateEpoch: 0, LeaderEpoch: -1, StartOffset: -1}},
		{name: "reset keeps the leader epoch", s: stored, epoch: 4, start: 0, want: State{StateEpoch: 4, LeaderEpoch: 7, StartOffset: 0}},
		{name: "same epoch is fenced", s: stored, epoch: 3, start: 10, wantErr: kerr.FencedStateEpoch},
		{name: "older epoch is fenced", s: stored, epoch: 2, start: 10, wantErr: kerr.FencedStateEpoch},
		{name: "a retry changes nothing", s: State{StateEpoch: 4, LeaderEpoch: 7, StartOffset: 0}, epoch: 4, start: 0, want: State{StateEpoch: 4, LeaderEpoch: 7, StartOffset: 0}},
		{name: "negative epoch", s: uninitialized, epoch: -1, start: 0, wantErr: kerr.InvalidRequest},
		{name: "start below -1", s: uninitialized, epoch: 0, start: -2, wantErr: kerr.InvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := initializeState(tc.s, tc.epoch, tc.start)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestReadState(t *testing.T) {
	stored := State{StateEpoch: 1, LeaderEpoch: 7, StartOffset: 10}
	for _, tc := range []struct {
		name        string
		s           State
		leaderEpoch int32
		wantEpoch   int32
		wantChanged bool
		wantErr     *kerr.Error
	}{
		{name: "same leader", s: stored, leaderEpoch: 7, wantEpoch: 7},
		{name: "newer leader is stored", s: stored, leaderEpoch: 9, wantEpoch: 9, wantChanged: true},
		{name: "older leader is fenced", s: stored, leaderEpoch: 6, wantErr: kerr.FencedLeaderEpoch},
		{name: "no leader epoch neither fences nor stores", s: stored, leaderEpoch: -1, wantEpoch: 7},
		{name: "uninitialized stores nothing", s: uninitialized, leaderEpoch: 3, wantEpoch: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed, err := readState(tc.s, tc.leaderEpoch)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || changed != tc.wantChanged || got.LeaderEpoch != tc.wantEpoch {
				t.Fatalf("got epoch %d changed %v err %v; want %d %v", got.LeaderEpoch, changed, err, tc.wantEpoch, tc.wantChanged)
			}
		})
	}
}

func TestDeliveryComplete(t *testing.T) {
	s := State{StateEpoch: 0, StartOffset: 0, Batches: []Batch{
		{First: 0, Last: 9, State: Acknowledged, DeliveryCount: 1},
		{First: 10, Last: 14, State: Available, DeliveryCount: 1},
		{First: 20, Last: 22, State: Archived, DeliveryCount: 5},
	}}
	if got := s.deliveryComplete(); got != 13 {
		t.Fatalf("deliveryComplete = %d, want 13", got)
	}
}

// TestWriteStateMatchesModel checks writeState against a model that keeps
// one state per offset, on random states and writes.
func TestWriteStateMatchesModel(t *testing.T) {
	type cell struct {
		state RecordState
		count int16
	}
	const span = 40
	rng := rand.New(rand.NewPCG(1, 2))
	randomBatches := func() []Batch {
		var bs []Batch
		for off := int64(rng.IntN(4)); off < span; {
			n := int64(1 + rng.IntN(6))
			bs = append(bs, Batch{First: off, Last: min(off+n-1, span-1), State: []RecordState{Available, Acknowledged, Archived}[rng.IntN(3)], DeliveryCount: int16(rng.IntN(3))})
			off += n + int64(rng.IntN(4))
		}
		return bs
	}
	expand := func(s State) map[int64]cell {
		m := map[int64]cell{}
		for _, b := range s.Batches {
			for o := b.First; o <= b.Last; o++ {
				m[o] = cell{b.State, b.DeliveryCount}
			}
		}
		return m
	}
	for i := range 2000 {
		start := int64(rng.IntN(5))
		s := State{StateEpoch: 0, LeaderEpoch: 0, StartOffset: start, Batches: normalize(randomBatches(), start)}
		w := Write{StateEpoch: 0, LeaderEpoch: 0, StartOffset: -1, Batches: randomBatches()}
		if rng.IntN(3) == 0 {
			w.StartOffset = int64(rng.IntN(span))
		}
		want := expand(s)
		for _, b := range w.Batches {
			for o := b.First; o <= b.Last; o++ {
				want[o] = cell{b.State, b.DeliveryCount}
			}
		}
		newStart := s.StartOffset
		if w.StartOffset >= 0 {
			newStart = w.StartOffset
		}
		for o, c := range want {
			if o < newStart || c == (cell{Available, 0}) {
				delete(want, o)
			}
		}
		got, err := writeState(s, w)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if err := got.check(); err != nil {
			t.Fatalf("case %d: result breaks the invariants: %v\n%+v", i, err, got)
		}
		if g := expand(got); !reflect.DeepEqual(g, want) {
			t.Fatalf("case %d: state %+v after write %+v\ngot  %v\nwant %v", i, s, w, g, want)
		}
		for j := 1; j < len(got.Batches); j++ {
			a, b := got.Batches[j-1], got.Batches[j]
			if a.Last+1 == b.First && a.State == b.State && a.DeliveryCount == b.DeliveryCount {
				t.Fatalf("case %d: neighbours %+v %+v not joined", i, a, b)
			}
		}
	}
}

// BenchmarkWriteStateSnapshot measures what one write costs the
// coordinator before the append: the merge and the snapshot encoding,
// for states of 10 to 2000 batches (the worst case: every record in a
// state of its own).
func BenchmarkWriteStateSnapshot(b *testing.B) {
	for _, n := range []int{10, 100, 2000} {
		b.Run(fmt.Sprintf("batches=%d", n), func(b *testing.B) {
			s := State{StateEpoch: 0, LeaderEpoch: 0, StartOffset: 0}
			for i := range int64(n) {
				s.Batches = append(s.Batches, Batch{First: 2 * i, Last: 2 * i, State: []RecordState{Acknowledged, Archived}[i%2], DeliveryCount: 1})
			}
			w := Write{StateEpoch: 0, LeaderEpoch: 0, StartOffset: -1, Batches: []Batch{{First: int64(n), Last: int64(n), State: Available, DeliveryCount: 2}}}
			b.ReportAllocs()
			var size int
			for b.Loop() {
				next, err := writeState(s, w)
				if err != nil {
					b.Fatal(err)
				}
				size = len(encodeValue(next))
			}
			b.ReportMetric(float64(size), "record-bytes")
		})
	}
}
