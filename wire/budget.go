package wire

import (
	"context"
	"math"
	"sync"
)

// Frames of at most smallFrameBytes (Metadata, ApiVersions, heartbeats,
// offset commits: everything but bulk produce) are charged whole and may
// use the small-frame reserve above the limit, so a fresh client is
// answered while producers have used the budget up.
const (
	smallFrameBytes   = 64 << 10
	smallReserveBytes = 8 << 20
)

// memoryBudget bounds the bytes of requests read but not yet answered and
// of fetch responses read but not yet written, across every connection of
// a server (queued.max.request.bytes). A connection that cannot take what
// its next bytes need stops reading from its socket until memory comes
// back, so TCP slows its client down; nothing is dropped.
//
// Memory is taken as a frame's bytes arrive (frameReader), never promised
// up front for the whole announced size. So that connections holding
// partly read frames cannot wait on each other for ever, waiters are
// served in order and the one at the head may take the progress token:
// it then takes what it needs beyond the limit, once the budget is not
// already over it (judged without the small frames, which have their
// reserve: a fetch's own request frame is one while the fetch waits in
// line for its grant, and counting it once wedged every connection),
// and gives the token back when its frame is whole. Used
// memory therefore stays below limit + socket.request.max.bytes +
// smallReserveBytes (+ one fetch grant, which may likewise go beyond the
// limit from the head of the line).
//
// A nil *memoryBudget is unlimited. Safe for concurrent use.
type memoryBudget struct {
	limit int64

	mu   sync.Mutex
	used int64
	// small is the part of used that small frames hold (takeSmall,
	// releaseSmall). It is left out when deciding whether the budget is
	// over its limit for the token and for fetches: a small frame may go
	// into the reserve, and one whose request waits in line (a fetch
	// waiting for its grant) must not keep the partly read frames, which
	// may hold the whole limit, from ever going on.
	small int64
	// token is held by the frame reading beyond the limit, if any.
	token *frameReader
	// waiters are served in arrival order.
	waiters []*budgetWaiter
	// peak is the highest used seen (Stats).
	peak int64
}

// budgetWaiter is a take waiting for memory.
type budgetWaiter struct {
	n     int64
	owner *frameReader // nil: a fetch or a small frame, which never take the token
	// small may use the small-frame reserve.
	small bool
	ready chan struct{}
	// granted is set under mu when the memory was taken for the waiter.
	granted bool
}

// newMemoryBudget returns a budget of limit bytes; limit < 0 is unlimited
// (nil).
func newMemoryBudget(limit int64) *memoryBudget {
	if limit < 0 {
		return nil
	}
	return &memoryBudget{limit: limit}
}

// BudgetStats is the request memory budget's state, for metrics.
type BudgetStats struct {
	// Limit is queued.max.request.bytes; -1 when unlimited.
	Limit int64
	// Used is the memory requests and fetch responses hold now.
	Used int64
	// Peak is the highest Used since start.
	Peak int64
	// Waiting is how many connections wait for memory now.
	Waiting int
}

// stats returns b's state.
func (b *memoryBudget) stats() BudgetStats {
	if b == nil {
		return BudgetStats{Limit: -1}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{Limit: b.limit, Used: b.used, Peak: b.peak, Waiting: len(b.waiters)}
}

// takeSmall takes n bytes of a small frame at once, from the budget or
// the small-frame reserve; it waits in line only when both are used up.
func (b *memoryBudget) takeSmall(ctx context.Context, n int64) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	if b.used+n <= b.limit+smallReserveBytes {
		b.add(n)
		b.small += n
		b.mu.Unlock()
		return nil
	}
	return b.waitLocked(ctx, &budgetWaiter{n: n, small: true, ready: make(chan struct{})})
}

// take takes n bytes for f's frame, waiting in line while they are not
// there. f nil is a fetch response.
func (b *memoryBudget) take(ctx context.Context, f *frameReader, n int64) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	w := &budgetWaiter{n: n, owner: f, ready: make(chan struct{})}
	// The token's holder goes ahead of the line: the line waits for it.
	if (len(b.waiters) == 0 || (f != nil && b.token == f)) && b.grantable(w) {
		b.grant(w)
		b.mu.Unlock()
		return nil
	}
	return b.waitLocked(ctx, w)
}

// waitLocked queues w and waits until it is granted or ctx ends. mu is
// held on entry and released.
func (b *memoryBudget) waitLocked(ctx context.Context, w *budgetWaiter) error {
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.granted {
		// Granted as ctx ended: give it back.
		b.releaseLocked(w.n)
		if w.small {
			b.small = max(b.small-w.n, 0)
		}
		if b.token == w.owner && w.owner != nil {
			b.token = nil
			b.serveLocked()
		}
		return ctx.Err()
	}
	for i, o := range b.waiters {
		if o == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			break
		}
	}
	// The head may have changed.
	b.serveLocked()
	return ctx.Err()
}

// grantable reports whether w may take its bytes now.
func (b *memoryBudget) grantable(w *budgetWaiter) bool {
	if b.used+w.n <= b.limit || (w.small && b.used+w.n <= b.limit+smallReserveBytes) {
		return true
	}
	// Over the limit or not is judged without the small frames: they
	// have their reserve, and a fetch's request frame is one of them
	// while the fetch waits here for its grant.
	overLimit := b.used-b.small > b.limit
	if w.owner == nil {
		// A fetch at the head may go beyond the limit while the budget
		// is not already over it: partly read frames may hold all of it,
		// and a fetch gives its memory back without waiting on any
		// client, so the line moves on.
		return !w.small && !overLimit
	}
	// The token: one frame at a time reads beyond the limit, and only
	// while the budget is not already over it.
	return b.token == w.owner || (b.token == nil && !overLimit)
}

// grant takes w's bytes, and the token when they go beyond the limit.
func (b *memoryBudget) grant(w *budgetWaiter) {
	if b.used+w.n > b.limit && w.owner != nil {
		b.token = w.owner
	}
	b.add(w.n)
	if w.small {
		b.small += w.n
	}
	w.granted = true
}

func (b *memoryBudget) add(n int64) {
	b.used += n
	b.peak = max(b.peak, b.used)
}

// serveLocked grants waiters in order while the head can be granted.
func (b *memoryBudget) serveLocked() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if !b.grantable(w) {
			return
		}
		b.grant(w)
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		close(w.ready)
	}
}

// release gives n bytes back.
func (b *memoryBudget) release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.releaseLocked(n)
	b.serveLocked()
}

// releaseFrame gives back the charge of a frame of size bytes that
// frameReader.next read: a small frame's (smallFrameBytes at most) with
// releaseSmall.
func (b *memoryBudget) releaseFrame(size int, charge int64) {
	if size <= smallFrameBytes {
		b.releaseSmall(charge)
		return
	}
	b.release(charge)
}

// releaseSmall gives back n bytes a small frame took (takeSmall).
func (b *memoryBudget) releaseSmall(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.small = max(b.small-n, 0)
	b.releaseLocked(n)
	b.serveLocked()
}

func (b *memoryBudget) releaseLocked(n int64) {
	// Callers give back exactly what they took (budget_test checks it
	// ends at zero); never go below zero if one did not.
	b.used = max(b.used-n, 0)
}

// frameDone gives back the token if f holds it: its frame is whole.
func (b *memoryBudget) frameDone(f *frameReader) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.token == f {
		b.token = nil
		b.serveLocked()
	}
}

// force takes n bytes without waiting, even beyond the limit: memory a
// fetch read already needs (its size was bounded by room before it began).
func (b *memoryBudget) force(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.add(n)
}

// room returns how many bytes may be taken now without waiting; unlimited
// is math.MaxInt.
func (b *memoryBudget) room() int {
	if b == nil {
		return math.MaxInt
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) > 0 {
		return 0
	}
	return int(max(b.limit-b.used, 0))
}
