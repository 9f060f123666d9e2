package partition

import (
	"errors"
	"slices"
	"testing"
)

// epochQuery is one EpochEndOffset call and its expected answer.
type epochQuery struct {
	epoch      int32
	wantEpoch  int32
	wantOffset int64
}

// epochStep sets the leader epoch, then appends records in one batch.
type epochStep struct {
	epoch   int32
	records int
}

// epochHistory is offsets [0,3) in epoch 0, [3,5) in epoch 2, [5,10) in
// epoch 5; the replica's current epoch is 5.
var epochHistory = []epochStep{{0, 2}, {0, 1}, {2, 2}, {5, 4}, {5, 1}}

// epochHistoryQueries are the answers for epochHistory, by Kafka's rules.
var epochHistoryQueries = []epochQuery{
	{epoch: -1, wantEpoch: -1, wantOffset: -1}, // undefined
	{epoch: 0, wantEpoch: 0, wantOffset: 3},    // ends where epoch 2 starts
	{epoch: 1, wantEpoch: 0, wantOffset: 3},    // never leader: the largest epoch below, and its end
	{epoch: 2, wantEpoch: 2, wantOffset: 5},
	{epoch: 3, wantEpoch: 2, wantOffset: 5},
	{epoch: 5, wantEpoch: 5, wantOffset: 10},  // current: the log end offset
	{epoch: 6, wantEpoch: -1, wantOffset: -1}, // above the current epoch
}

func TestEpochEndOffset(t *testing.T) {
	for _, tc := range []struct {
		name    string
		steps   []epochStep
		current int32 // SetLeaderEpoch after the steps; -1 leaves it
		queries []epochQuery
	}{
		{
			name:    "empty log epoch 0",
			current: -1,
			queries: []epochQuery{{0, 0, 0}, {1, -1, -1}, {-1, -1, -1}},
		},
		{
			name:    "one epoch",
			steps:   []epochStep{{0, 3}, {0, 4}},
			current: -1,
			queries: []epochQuery{{0, 0, 7}, {1, -1, -1}},
		},
		{
			name:    "history",
			steps:   epochHistory,
			current: -1,
			queries: epochHistoryQueries,
		},
		{
			name:    "first epoch above the requested",
			steps:   []epochStep{{3, 2}, {4, 2}},
			current: -1,
			queries: []epochQuery{{1, 1, 0}, {3, 3, 2}, {4, 4, 4}},
		},
		{
			// Kafka records a new leader's epoch at election, before it
			// writes: the old epoch ends at the log end offset.
			name:    "new epoch with nothing written",
			steps:   []epochStep{{0, 3}},
			current: 4,
			queries: []epochQuery{{0, 0, 3}, {2, 0, 3}, {4, 4, 3}, {5, -1, -1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newEnv(t).open(t)
			for _, s := range tc.steps {
				r.SetLeaderEpoch(s.epoch)
				mustAppend(t, r, plain(s.records, 0).build(t))
			}
			if tc.current >= 0 {
				r.SetLeaderEpoch(tc.current)
			}
			checkEpochQueries(t, r, tc.queries)
		})
	}
}

func checkEpochQueries(t *testing.T, r *Replica, queries []epochQuery) {
	t.Helper()
	for _, q := range queries {
		epoch, offset, err := r.EpochEndOffset(q.epoch)
		if err != nil || epoch != q.wantEpoch || offset != q.wantOffset {
			t.Errorf("EpochEndOffset(%d) = %d, %d, %v; want %d, %d", q.epoch, epoch, offset, err, q.wantEpoch, q.wantOffset)
		}
	}
}

// TestEpochEndOffsetAfterReopen checks that Open rebuilds the cache from
// the batch headers (the epoch itself is volatile: replication sets it).
func TestEpochEndOffsetAfterReopen(t *testing.T) {
	env := newEnv(t)
	r := openQuiet(t, env)
	for _, s := range epochHistory {
		r.SetLeaderEpoch(s.epoch)
		mustAppend(t, r, plain(s.records, 0).build(t))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.EpochEndOffset(0); !errors.Is(err, ErrClosed) {
		t.Errorf("EpochEndOffset after Close: %v, want ErrClosed", err)
	}
	r = env.open(t)
	if got := r.epochs.load(); !slices.Equal(got, []epochEntry{{0, 0}, {2, 3}, {5, 5}}) {
		t.Fatalf("rebuilt entries %v", got)
	}
	r.SetLeaderEpoch(5)
	checkEpochQueries(t, r, epochHistoryQueries)
}

func TestEpochCacheAssign(t *testing.T) {
	for _, tc := range []struct {
		name    string
		assigns []epochEntry
		want    []epochEntry
	}{
		{"ascending", []epochEntry{{0, 0}, {0, 5}, {1, 7}, {4, 9}}, []epochEntry{{0, 0}, {1, 7}, {4, 9}}},
		{"no epoch ignored", []epochEntry{{-1, 0}, {2, 3}, {-1, 5}}, []epochEntry{{2, 3}}},
		{"lower epoch drops later entries", []epochEntry{{0, 0}, {3, 5}, {5, 8}, {2, 10}}, []epochEntry{{0, 0}, {2, 10}}},
		{"lower offset drops later entries", []epochEntry{{0, 0}, {3, 5}, {5, 8}, {6, 6}}, []epochEntry{{0, 0}, {3, 5}, {6, 6}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c epochCache
			for _, a := range tc.assigns {
				c.assign(a.epoch, a.startOffset)
			}
			if got := c.load(); !slices.Equal(got, tc.want) {
				t.Errorf("entries %v, want %v", got, tc.want)
			}
		})
	}
}
