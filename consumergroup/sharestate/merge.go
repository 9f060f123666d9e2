package sharestate

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The state transitions, pure functions of a stored State and a request,
// so that they are tested alone (merge_test.go). Each returns the next
// State or a *kerr.Error wrapped with what was wrong.

// uninitialized is the State of a key never initialized, or deleted.
var uninitialized = State{StateEpoch: -1, LeaderEpoch: -1, StartOffset: -1}

// initialized reports whether s was set by Initialize.
func (s State) initialized() bool { return s.StateEpoch >= 0 }

// clone returns s with its own Batches.
func (s State) clone() State {
	s.Batches = slices.Clone(s.Batches)
	return s
}

// check reports a State that breaks the invariants State documents.
func (s State) check() error {
	if s.StateEpoch < -1 || s.LeaderEpoch < -1 || s.StartOffset < -1 {
		return fmt.Errorf("epochs %d/%d or start offset %d below -1", s.StateEpoch, s.LeaderEpoch, s.StartOffset)
	}
	if !s.initialized() && (s.StartOffset != -1 || len(s.Batches) > 0) {
		return errors.New("an uninitialized state with a start offset or batches")
	}
	if err := checkBatches(s.Batches); err != nil {
		return err
	}
	if len(s.Batches) > 0 && s.StartOffset >= 0 && s.Batches[0].First < s.StartOffset {
		return fmt.Errorf("batch at %d before the start offset %d", s.Batches[0].First, s.StartOffset)
	}
	return nil
}

// checkBatches reports batches that are not sorted, overlap, or hold an
// offset below 0, a state that is never stored, or a negative delivery
// count.
func checkBatches(bs []Batch) error {
	for i, b := range bs {
		switch {
		case b.First < 0 || b.Last < b.First:
			return fmt.Errorf("batch [%d, %d] is empty or negative", b.First, b.Last)
		case b.State != Available && b.State != Acknowledged && b.State != Archived:
			return fmt.Errorf("batch [%d, %d] in state %d (only 0, 2 and 4 are stored)", b.First, b.Last, b.State)
		case b.DeliveryCount < 0:
			return fmt.Errorf("batch [%d, %d] with delivery count %d", b.First, b.Last, b.DeliveryCount)
		case i > 0 && b.First <= bs[i-1].Last:
			return fmt.Errorf("batch [%d, %d] not after [%d, %d]", b.First, b.Last, bs[i-1].First, bs[i-1].Last)
		}
	}
	return nil
}

// initializeState is Initialize on stored state s: a state epoch above
// the stored one starts a new state at startOffset (-1: the data
// partition's leader picks it on first read), keeping the leader epoch
// that fences deposed leaders. Repeating the initialization that made s
// (a retry) changes nothing.
func initializeState(s State, stateEpoch int32, startOffset int64) (State, error) {
	switch {
	case stateEpoch < 0 || startOffset < -1:
		return s, fmt.Errorf("state epoch %d or start offset %d out of range: %w", stateEpoch, startOffset, kerr.InvalidRequest)
	case stateEpoch == s.StateEpoch && startOffset == s.StartOffset && len(s.Batches) == 0:
		return s, nil
	case stateEpoch <= s.StateEpoch:
		return s, fmt.Errorf("state epoch %d not above the stored %d: %w", stateEpoch, s.StateEpoch, kerr.FencedStateEpoch)
	}
	return State{StateEpoch: stateEpoch, LeaderEpoch: s.LeaderEpoch, StartOffset: startOffset}, nil
}

// readState is Read by the leader in leaderEpoch on stored state s: an
// older leader epoch is fenced, a newer one is stored (changed reports
// that a record is needed). leaderEpoch -1 neither fences nor is stored.
// An uninitialized s is returned as is.
func readState(s State, leaderEpoch int32) (next State, changed bool, err error) {
	if !s.initialized() || leaderEpoch < 0 || leaderEpoch == s.LeaderEpoch {
		return s, false, nil
	}
	if leaderEpoch < s.LeaderEpoch {
		return s, false, fmt.Errorf("leader epoch %d below the stored %d: %w", leaderEpoch, s.LeaderEpoch, kerr.FencedLeaderEpoch)
	}
	s.LeaderEpoch = leaderEpoch
	return s, true, nil
}

// writeState is Write w on stored state s: fenced unless w carries s's
// state epoch and a leader epoch not below s's; otherwise w's batches
// replace the states of their offset ranges, a start offset moves the
// start (batches before it are dropped, one across it is cut), and the
// result is normalized. A write on an uninitialized key is fenced: the
// writer reads again and learns the state was deleted.
func writeState(s State, w Write) (State, error) {
	switch {
	case !s.initialized() || w.StateEpoch != s.StateEpoch:
		return s, fmt.Errorf("state epoch %d, stored %d: %w", w.StateEpoch, s.StateEpoch, kerr.FencedStateEpoch)
	case w.LeaderEpoch < s.LeaderEpoch:
		return s, fmt.Errorf("leader epoch %d below the stored %d: %w", w.LeaderEpoch, s.LeaderEpoch, kerr.FencedLeaderEpoch)
	case w.StartOffset < -1:
		return s, fmt.Errorf("start offset %d: %w", w.StartOffset, kerr.InvalidRequest)
	}
	if err := checkBatches(w.Batches); err != nil {
		return s, fmt.Errorf("%w: %w", err, kerr.InvalidRequest)
	}
	next := State{StateEpoch: s.StateEpoch, LeaderEpoch: max(s.LeaderEpoch, w.LeaderEpoch), StartOffset: s.StartOffset}
	if w.StartOffset >= 0 {
		next.StartOffset = w.StartOffset
	}
	next.Batches = normalize(replaceRanges(s.Batches, w.Batches), next.StartOffset)
	return next, nil
}

// replaceRanges returns old with every offset covered by news taken from
// news: both sorted and not overlapping; so is the result. Linear in
// len(old)+len(news).
func replaceRanges(old, news []Batch) []Batch {
	out := make([]Batch, 0, len(old)+len(news))
	j := 0 // first of news not wholly before the current old batch
	for _, b := range old {
		for j < len(news) && news[j].Last < b.First {
			j++
		}
		cur := b.First
		for k := j; k < len(news) && news[k].First <= b.Last; k++ {
			if news[k].First > cur {
				piece := b
				piece.First, piece.Last = cur, news[k].First-1
				out = append(out, piece)
			}
			cur = max(cur, news[k].Last+1)
		}
		if cur <= b.Last {
			piece := b
			piece.First = cur
			out = append(out, piece)
		}
	}
	out = append(out, news...)
	slices.SortFunc(out, func(a, b Batch) int {
		switch {
		case a.First < b.First:
			return -1
		case a.First > b.First:
			return 1
		}
		return 0
	})
	return out
}

// normalize drops what lies before start (-1: nothing), and the batches
// that say only "available, never delivered" (the state of any offset no
// batch covers), and joins neighbours in the same state with the same
// delivery count. bs is sorted and not overlapping; it is modified.
func normalize(bs []Batch, start int64) []Batch {
	out := bs[:0]
	for _, b := range bs {
		if start >= 0 && b.Last < start {
			continue
		}
		if start >= 0 && b.First < start {
			b.First = start
		}
		if b.State == Available && b.DeliveryCount == 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Last+1 == b.First && out[n-1].State == b.State && out[n-1].DeliveryCount == b.DeliveryCount {
			out[n-1].Last = b.Last
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// deliveryComplete counts the offsets at or after the start offset whose
// delivery is complete (acknowledged or archived), as
// ReadShareGroupStateSummary v1 reports.
func (s State) deliveryComplete() int64 {
	var n int64
	for _, b := range s.Batches {
		if b.State == Acknowledged || b.State == Archived {
			n += b.Last - b.First + 1
		}
	}
	return n
}
