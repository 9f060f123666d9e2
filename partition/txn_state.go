package partition

import (
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// txnEvent is a change Apply (or a replay of the log) makes to the
// transactions of a partition: a producer's transaction begins at first,
// or a marker at offset marker ends it.
type txnEvent struct {
	producerID int64
	// first is the offset of the transaction's first batch: for a begin
	// the batch's own offset, for an end the first offset of the
	// transaction it ends (-1 when none was ongoing).
	first int64
	// marker is the offset of the marker for an end, -1 for a begin.
	marker int64
	commit bool
}

// abortedRange is one aborted transaction in the index: its producer and
// its offsets [first, last], last being its ABORT marker's.
type abortedRange struct {
	producerID  int64
	first, last int64
}

// completedTxn is a transaction whose marker is in the log but not yet
// below the high watermark: until it is, a leader change may still lose
// the marker, so the transaction stays unstable and bounds the LSO.
type completedTxn struct {
	producerID    int64
	first, marker int64
}

// txnState is what a replica knows of its transactions beyond the producer
// state: the unstable ones that bound the LSO and the index of aborted
// ones that read_committed fetches report.
//
// mu guards ongoing and unreplicated. It is a leaf lock: taken under
// Replica.mu by Apply and by the flusher's OnSynced (through advanceHWM),
// never held while taking another. lso and aborted are read without it.
type txnState struct {
	mu sync.Mutex
	// ongoing maps a producer with an ongoing transaction to the offset
	// of its first batch. Guarded by mu.
	ongoing map[int64]int64
	// unreplicated are the completed transactions whose marker is at or
	// above the high watermark, in marker order. Guarded by mu.
	unreplicated []completedTxn

	// lso is the last stable offset: the high watermark, or the first
	// offset of the oldest unstable transaction when lower. Stored under
	// mu, by update, from the high watermark it loads there; read without
	// a lock. It never exceeds the high watermark, which only grows, so a
	// reader that loads lso before the high watermark sees lso <= hwm.
	lso atomic.Int64
	// aborted is the aborted-transaction index, by ascending last offset
	// (marker order). Writers (under Replica.mu) publish a new slice
	// header: appends only write past the length readers know, and a trim
	// copies, so a reader's slice never changes under it.
	aborted atomic.Pointer[[]abortedRange]
}

func (t *txnState) init() {
	t.ongoing = make(map[int64]int64)
	empty := []abortedRange{}
	t.aborted.Store(&empty)
}

// reset forgets everything (a rebuild follows).
func (t *txnState) reset() {
	t.mu.Lock()
	clear(t.ongoing)
	t.unreplicated = nil
	t.mu.Unlock()
	empty := []abortedRange{}
	t.aborted.Store(&empty)
}

// record applies events, in log order. Called with Replica.mu held.
func (t *txnState) record(events []txnEvent) {
	if len(events) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ev := range events {
		if ev.marker < 0 {
			t.ongoing[ev.producerID] = ev.first
			continue
		}
		delete(t.ongoing, ev.producerID)
		if ev.first < 0 {
			// Nothing was ongoing: the marker ends no data, and a
			// read_committed consumer has nothing to drop.
			continue
		}
		t.unreplicated = append(t.unreplicated, completedTxn{ev.producerID, ev.first, ev.marker})
		if !ev.commit {
			old := *t.aborted.Load()
			next := append(old, abortedRange{ev.producerID, ev.first, ev.marker})
			t.aborted.Store(&next)
		}
	}
}

// update recomputes the LSO for the high watermark hwm holds, forgetting
// the completed transactions whose markers lie below it. It loads hwm
// under mu, so of two concurrent updates the later stores the LSO of the
// later high watermark.
func (t *txnState) update(highWatermark *atomic.Int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	hwm := highWatermark.Load()
	t.unreplicated = slices.DeleteFunc(t.unreplicated, func(c completedTxn) bool { return c.marker < hwm })
	lso := hwm
	for _, first := range t.ongoing {
		lso = min(lso, first)
	}
	for _, c := range t.unreplicated {
		lso = min(lso, c.first)
	}
	t.lso.Store(lso)
}

// trimAborted drops the aborted transactions wholly below logStart.
// Called with Replica.mu held.
func (t *txnState) trimAborted(logStart int64) {
	old := *t.aborted.Load()
	i := sort.Search(len(old), func(i int) bool { return old[i].last >= logStart })
	if i == 0 {
		return
	}
	next := slices.Clone(old[i:])
	t.aborted.Store(&next)
}

// removeAborted drops from the index the aborted transactions of removed
// (matched by producer id and last offset). Called with Replica.mu held.
func (t *txnState) removeAborted(removed []abortedRange) {
	if len(removed) == 0 {
		return
	}
	next := slices.DeleteFunc(slices.Clone(*t.aborted.Load()), func(a abortedRange) bool {
		return slices.ContainsFunc(removed, func(r abortedRange) bool { return r.producerID == a.producerID && r.last == a.last })
	})
	t.aborted.Store(&next)
}

// abortedIn returns the aborted transactions that may hold data in the
// offsets [from, end()): last >= from and first < end(), by ascending last
// offset; nil when none. end is called only when some aborted transaction
// ends at or after from (most reads find none and skip it).
func (t *txnState) abortedIn(from int64, end func() int64) []AbortedTxn {
	list := *t.aborted.Load()
	i := sort.Search(len(list), func(i int) bool { return list[i].last >= from })
	if i == len(list) {
		return nil
	}
	to := end()
	var out []AbortedTxn
	for _, a := range list[i:] {
		if a.first < to {
			out = append(out, AbortedTxn{ProducerID: a.producerID, FirstOffset: a.first})
		}
	}
	return out
}

// isAborted reports whether the transactional batch of producerID at
// offset belongs to an aborted transaction.
func (t *txnState) isAborted(producerID, offset int64) bool {
	list := *t.aborted.Load()
	i := sort.Search(len(list), func(i int) bool { return list[i].last >= offset })
	for _, a := range list[i:] {
		if a.producerID == producerID {
			// A producer's transactions do not overlap: the first of
			// its aborted ones ending at or after offset is the only
			// one that may hold it.
			return a.first <= offset
		}
	}
	return false
}
