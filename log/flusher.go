package log

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// FlushConfig says when the Flusher syncs.
type FlushConfig struct {
	// Interval, when zero (the default), syncs as soon as anything is
	// appended: every append is durable before it is acknowledged, and
	// appends arriving while a sync runs share the next one (group commit).
	// A positive Interval syncs dirty logs at most that often, trading the
	// last Interval of writes on power loss for throughput. Corresponds
	// loosely to log.flush.interval.ms.
	Interval time.Duration
}

// maxParallelSyncs bounds the goroutines syncing files in one round.
const maxParallelSyncs = 64

// Flusher syncs the logs registered with it, shared by every partition on a
// node so that a burst of appends costs one fdatasync per dirty log per
// round, with the files of one round synced concurrently.
//
// One goroutine, started by NewFlusher and stopped by Close, owns the sync
// loop. Append marks its log dirty and signals it without waiting; the loop
// takes the whole dirty set, syncs each log's files concurrently, then
// advances each log's synced offset to the log end offset captured before
// its sync and calls its OnSynced. Appends made while a round runs go into
// the next round (group commit). Safe for concurrent use.
type Flusher struct {
	cfg    FlushConfig
	logger *zap.Logger

	// mu guards the fields below it; cond (on mu) wakes the loop.
	mu   sync.Mutex
	cond sync.Cond
	// dirty are the logs with appends not yet covered by a round.
	dirty map[*Log]struct{}
	// intervalPassed is set by the interval timer (Interval > 0).
	intervalPassed bool
	closed         bool

	done chan struct{} // closed when the loop exits

	syncs, bytes, rounds atomic.Int64
	// observer, if set, is told of every sync (SetSyncObserver).
	observer atomic.Pointer[SyncObserver]
}

// NewFlusher starts the flusher's goroutine. A nil logger means nop.
func NewFlusher(cfg FlushConfig, logger *zap.Logger) *Flusher {
	if logger == nil {
		logger = zap.NewNop()
	}
	f := &Flusher{
		cfg:    cfg,
		logger: logger.Named("log").Named("flusher"),
		dirty:  map[*Log]struct{}{},
		done:   make(chan struct{}),
	}
	f.cond.L = &f.mu
	go f.loop()
	return f
}

// FlushStats counts a Flusher's work since it started.
type FlushStats struct {
	// Syncs is the number of file syncs (fdatasync calls) done.
	Syncs int64
	// Bytes is the number of appended bytes those syncs made durable.
	Bytes int64
	// Rounds is the number of flush rounds (one round syncs every dirty
	// log concurrently).
	Rounds int64
}

// Stats returns the counters; safe for concurrent use.
func (f *Flusher) Stats() FlushStats {
	return FlushStats{Syncs: f.syncs.Load(), Bytes: f.bytes.Load(), Rounds: f.rounds.Load()}
}

// Close stops the flusher after one last round; it waits for the goroutine
// or for ctx. Logs appended to after Close are synced only by their own
// Sync and Close. A second Close returns ErrClosed.
func (f *Flusher) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	f.closed = true
	f.cond.Broadcast()
	f.mu.Unlock()
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// markDirty adds l to the next round. It never waits for a sync.
func (f *Flusher) markDirty(l *Log) {
	f.mu.Lock()
	if !f.closed {
		if _, ok := f.dirty[l]; !ok {
			f.dirty[l] = struct{}{}
			f.cond.Signal()
		}
	}
	f.mu.Unlock()
}

// forget drops l from the dirty set (l is closing).
func (f *Flusher) forget(l *Log) {
	f.mu.Lock()
	delete(f.dirty, l)
	f.mu.Unlock()
}

func (f *Flusher) loop() {
	defer close(f.done)
	var lastRound time.Time
	for {
		f.mu.Lock()
		for len(f.dirty) == 0 && !f.closed {
			f.cond.Wait()
		}
		if wait := f.cfg.Interval - time.Since(lastRound); f.cfg.Interval > 0 && wait > 0 && !f.closed {
			f.intervalPassed = false
			t := time.AfterFunc(wait, func() {
				f.mu.Lock()
				f.intervalPassed = true
				f.cond.Broadcast()
				f.mu.Unlock()
			})
			for !f.intervalPassed && !f.closed {
				f.cond.Wait()
			}
			t.Stop()
		}
		dirty, closing := f.dirty, f.closed
		f.dirty = map[*Log]struct{}{}
		f.mu.Unlock()
		if len(dirty) > 0 {
			lastRound = time.Now()
			f.round(dirty)
		}
		if closing {
			return
		}
	}
}

// round syncs every log in dirty concurrently, then advances their synced
// offsets from this goroutine.
func (f *Flusher) round(dirty map[*Log]struct{}) {
	type work struct {
		log   *Log
		job   syncJob
		syncs int64
		took  time.Duration
		err   error
	}
	works := make([]work, 0, len(dirty))
	for l := range dirty {
		l.syncMu.Lock()
		if l.failed.Load() != nil {
			l.syncMu.Unlock()
			continue
		}
		job, ok := l.prepareSync(false)
		if !ok {
			l.syncMu.Unlock()
			continue
		}
		works = append(works, work{log: l, job: job})
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelSyncs)
	for i := range works {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			began := time.Now()
			works[i].syncs, works[i].err = works[i].job.run()
			works[i].took = time.Since(began)
		})
	}
	wg.Wait()
	var observe SyncObserver
	if p := f.observer.Load(); p != nil {
		observe = *p
	}
	for _, w := range works {
		f.syncs.Add(w.syncs)
		before := w.log.syncedBytes
		if err := w.log.finishSync(w.job, w.err); err != nil {
			f.logger.Error("sync failed, log refuses appends", zap.String("dir", w.log.dir), zap.Error(err))
		} else {
			f.bytes.Add(w.job.appended - before)
			if observe != nil && !w.job.noop {
				observe(SyncInfo{Took: w.took, Bytes: w.job.appended - before})
			}
		}
		w.log.syncMu.Unlock()
	}
	f.rounds.Add(1)
}
