package partition

import (
	"context"
	"sync"
)

// Waiter receives a signal on C whenever the high watermark of any replica
// it watches advances, or a watched replica closes. C has a buffer of one, so
// signals coalesce and never block the replica.
//
// A fetch long-poll registers one Waiter with every partition it reads,
// checks for data, and then waits on C (and its ctx); signals that arrive
// between the check and the wait are kept by the buffer, so none is lost.
type Waiter struct {
	C chan struct{}
}

// NewWaiter returns a Waiter watching nothing.
func NewWaiter() *Waiter { return &Waiter{C: make(chan struct{}, 1)} }

// signal wakes w without blocking: a pending signal already says "look
// again", so a second one adds nothing.
func (w *Waiter) signal() {
	select {
	case w.C <- struct{}{}:
	default:
	}
}

// notifier tells waiters that the high watermark moved. It is the only
// state the flusher goroutine touches (through advanceHWM), so its lock is
// held only for a few non-blocking sends and never while doing I/O.
type notifier struct {
	mu sync.Mutex
	// changed is closed on every advance and on close; WaitCommitted
	// selects on it. It is made lazily, by the first WaitCommitted after an
	// advance, so appends nobody waits for allocate nothing. Nil when no
	// one waits. Guarded by mu.
	changed chan struct{}
	// waiters are the registered fetch waiters. Guarded by mu.
	waiters map[*Waiter]struct{}
	// closed is set once; a closed notifier signals new waiters at once.
	// Guarded by mu.
	closed bool
}

func (n *notifier) init() {
	n.waiters = make(map[*Waiter]struct{})
}

// wake closes the current changed channel and signals every waiter.
func (n *notifier) wake() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	if n.changed != nil {
		close(n.changed)
		n.changed = nil
	}
	for w := range n.waiters {
		w.signal()
	}
}

// close wakes everything one last time and refuses further waits.
func (n *notifier) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.closed = true
	if n.changed != nil {
		close(n.changed)
		n.changed = nil
	}
	for w := range n.waiters {
		w.signal()
	}
	clear(n.waiters)
}

// current returns the channel the next advance will close, and false once
// the notifier is closed.
func (n *notifier) current() (<-chan struct{}, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, false
	}
	if n.changed == nil {
		n.changed = make(chan struct{})
	}
	return n.changed, true
}

// advanceHWM raises the high watermark to offset if it is higher and wakes
// everyone waiting on it. It is the log's OnSynced callback in durable mode,
// so it runs on the flusher goroutine: an atomic max and a few non-blocking
// sends, nothing more.
func (r *Replica) advanceHWM(offset int64) {
	for {
		old := r.hwm.Load()
		if offset <= old {
			return
		}
		if r.hwm.CompareAndSwap(old, offset) {
			break
		}
	}
	// The LSO follows before the waiters wake, so a read_committed fetch
	// woken by this advance sees it.
	r.txns.update(&r.hwm)
	r.notify.wake()
}

// AdvanceHighWatermark raises the owner's bound on the high watermark to
// offset (lower bounds are ignored: it only grows) and the high watermark
// with it, as far as the log allows: to the lowest of offset, the log end
// and, with Durable, the synced offset. What the log does not allow yet
// follows when Apply or a sync reaches it. offset must be a batch boundary,
// such as an AppendResult's LastOffset + 1. It has no effect without
// Options.ExternalHighWatermark, or after Close. Safe for concurrent use;
// it takes no lock and never blocks.
func (r *Replica) AdvanceHighWatermark(offset int64) {
	if !r.externalHWM || r.closed.Load() {
		return
	}
	for {
		old := r.hwmLimit.Load()
		if offset <= old || r.hwmLimit.CompareAndSwap(old, offset) {
			break
		}
	}
	local := r.log.NextOffset()
	if r.durable {
		local = r.log.SyncedOffset()
	}
	r.advanceHWM(r.localHWMBound(local))
}

// localHWMBound returns how far the high watermark may move given that the
// log has reached offset (its end, or synced offset in durable mode): to
// offset, or with an external high watermark no further than the owner's
// bound.
//
// The bound and the log's offsets are each stored before the other side
// loads them (AdvanceHighWatermark stores the bound, then loads the log's
// offset; Apply and OnSynced store the log's, then load the bound), so one
// of the two sees both new values and no advance is lost.
func (r *Replica) localHWMBound(offset int64) int64 {
	if r.externalHWM {
		return min(offset, r.hwmLimit.Load())
	}
	return offset
}

// Watch registers w for high watermark advances of r until Unwatch. If r is
// already closed, w is signalled at once and not registered.
func (r *Replica) Watch(w *Waiter) {
	n := &r.notify
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		w.signal()
		return
	}
	n.waiters[w] = struct{}{}
}

// Unwatch removes w. Removing a Waiter that is not registered does
// nothing. A signal already in w.C stays there.
func (r *Replica) Unwatch(w *Waiter) {
	n := &r.notify
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.waiters, w)
}

// WaitCommitted blocks until the high watermark is above lastOffset (the
// append is durable and visible), ctx is done (its error) or the replica is
// closed (ErrClosed).
func (r *Replica) WaitCommitted(ctx context.Context, lastOffset int64) error {
	for {
		if r.hwm.Load() > lastOffset {
			return nil
		}
		// Take the channel first, then look again: an advance that
		// happened before we took it is seen by the second load, and one
		// after closes the channel we hold.
		changed, open := r.notify.current()
		if r.hwm.Load() > lastOffset {
			return nil
		}
		if !open {
			return ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
