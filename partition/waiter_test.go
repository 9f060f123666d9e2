package partition

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/log"
)

// signalled reports whether w holds a signal, consuming it.
func signalled(w *Waiter) bool {
	select {
	case <-w.C:
		return true
	default:
		return false
	}
}

func TestWaiters(t *testing.T) {
	r := newEnv(t).open(t)
	a, b := NewWaiter(), NewWaiter()
	r.Watch(a)
	r.Watch(b)
	if signalled(a) || signalled(b) {
		t.Fatal("signal before any append")
	}

	// Without Durable the high watermark moves inside Append, so the
	// signal is there when Append returns.
	mustAppend(t, r, plain(1, 0).build(t))
	if !signalled(a) || !signalled(b) {
		t.Fatal("waiters not signalled by an append")
	}

	// Signals coalesce and never block the replica.
	mustAppend(t, r, plain(1, 0).build(t))
	mustAppend(t, r, plain(1, 0).build(t))
	if !signalled(a) || signalled(a) {
		t.Fatal("two appends should leave exactly one pending signal")
	}

	// A rejected append moves nothing and signals nobody.
	signalled(b)
	if _, err := r.Append([]byte("junk")); err == nil {
		t.Fatal("junk appended")
	}
	if signalled(b) {
		t.Fatal("rejected append signalled")
	}

	r.Unwatch(a)
	r.Unwatch(a) // twice is harmless
	mustAppend(t, r, plain(1, 0).build(t))
	if signalled(a) {
		t.Fatal("unwatched waiter signalled")
	}
	if !signalled(b) {
		t.Fatal("watched waiter not signalled")
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !signalled(b) {
		t.Fatal("close did not signal")
	}
	c := NewWaiter()
	r.Watch(c)
	if !signalled(c) {
		t.Fatal("watching a closed replica did not signal at once")
	}
}

func TestWaitCommitted(t *testing.T) {
	t.Run("already committed", func(t *testing.T) {
		r := newEnv(t).open(t)
		res := mustAppend(t, r, plain(3, 0).build(t))
		if err := r.WaitCommitted(context.Background(), res.LastOffset); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("context done", func(t *testing.T) {
		r := newEnv(t).open(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := r.WaitCommitted(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("woken by an append", func(t *testing.T) {
		r := newEnv(t).open(t)
		done := make(chan error, 1)
		go func() { done <- r.WaitCommitted(context.Background(), 4) }()
		mustAppend(t, r, plain(3, 0).build(t)) // offsets 0-2: not enough
		mustAppend(t, r, plain(2, 0).build(t)) // 3-4
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		r := newEnv(t).open(t)
		done := make(chan error, 1)
		go func() { done <- r.WaitCommitted(context.Background(), 100) }()
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("err = %v, want ErrClosed", err)
		}
		if err := r.WaitCommitted(context.Background(), 100); !errors.Is(err, ErrClosed) {
			t.Fatalf("after close: err = %v, want ErrClosed", err)
		}
	})
}

// TestDurableHighWatermark checks that in durable mode the high watermark,
// reads and WaitCommitted move only when the Flusher has synced.
func TestDurableHighWatermark(t *testing.T) {
	env := newEnv(t)
	// A long interval: the first dirty round runs at once, the next only
	// when the Flusher closes.
	flusher := log.NewFlusher(log.FlushConfig{Interval: time.Hour}, nil)
	env.opts.Flusher, env.opts.Durable = flusher, true
	r := openQuiet(t, env)
	t.Cleanup(func() {
		_ = r.Close()
		_ = flusher.Close(context.Background())
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	w := NewWaiter()
	r.Watch(w)
	first := mustAppend(t, r, plain(2, 0).build(t))
	if err := r.WaitCommitted(ctx, first.LastOffset); err != nil {
		t.Fatalf("first append never committed: %v", err)
	}
	<-w.C
	if got := r.Offsets(); got.HighWatermark != 2 || got.LogEnd != 2 {
		t.Fatalf("offsets %+v after first sync", got)
	}

	second := mustAppend(t, r, plain(3, 0).build(t))
	// Not synced: nothing moved but the log end.
	if got := r.Offsets(); got.HighWatermark != 2 || got.LastStable != 2 || got.LogEnd != 5 {
		t.Fatalf("offsets %+v before the second sync", got)
	}
	if signalled(w) {
		t.Fatal("waiter signalled before the sync")
	}
	res, err := r.Read(nil, ReadRequest{Offset: 2, MaxBytes: 1 << 20})
	if err != nil || len(res.Records) != 0 || res.HighWatermark != 2 {
		t.Fatalf("read of unsynced data: %d bytes, hwm %d, %v", len(res.Records), res.HighWatermark, err)
	}
	if _, err := r.Read(nil, ReadRequest{Offset: 3}); err == nil {
		t.Fatal("read above the high watermark succeeded")
	}
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	if err := r.WaitCommitted(short, second.LastOffset); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitCommitted before sync: %v", err)
	}

	done := make(chan error, 1)
	go func() { done <- r.WaitCommitted(ctx, second.LastOffset) }()
	if err := flusher.Close(ctx); err != nil { // one last round syncs
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := r.Offsets(); got.HighWatermark != 5 {
		t.Fatalf("offsets %+v after the last sync", got)
	}
	if !signalled(w) {
		t.Fatal("waiter not signalled by the sync")
	}
}

func TestDurableWithoutFlusherSyncsInAppend(t *testing.T) {
	env := newEnv(t)
	env.opts.Durable = true
	r := env.open(t)
	mustAppend(t, r, plain(2, 0).build(t))
	if got := r.Offsets(); got.HighWatermark != 2 {
		t.Fatalf("offsets %+v", got)
	}
	// What the high watermark covers survives a power cut.
	crashed := env.fs.CrashClone()
	env.fs, env.opts.FS = crashed, crashed
	if got := env.open(t).Offsets(); got.LogEnd != 2 {
		t.Fatalf("after power cut: %+v", got)
	}
}

// TestConcurrentFetchers runs appends against many goroutines that watch,
// read up to the high watermark and wait, as fetch long-polls do; run
// with -race.
func TestConcurrentFetchers(t *testing.T) {
	env := newEnv(t)
	flusher := log.NewFlusher(log.FlushConfig{}, nil)
	t.Cleanup(func() { _ = flusher.Close(context.Background()) })
	env.opts.Flusher, env.opts.Durable = flusher, true
	r := env.open(t)
	const appends, fetchers = 200, 16
	var wg sync.WaitGroup
	for range fetchers {
		wg.Go(func() {
			w := NewWaiter()
			r.Watch(w)
			defer r.Unwatch(w)
			var buf []byte
			for offset := int64(0); offset < appends; {
				res, err := r.Read(buf[:0], ReadRequest{Offset: offset, MaxBytes: 1 << 16})
				if err != nil {
					t.Error(err)
					return
				}
				buf = res.Records
				if len(buf) == 0 {
					<-w.C
					continue
				}
				err = log.SplitBatches(buf, func(_ []byte, h log.BatchHeader) error {
					offset = h.NextOffset()
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range appends {
		res := mustAppend(t, r, plain(1, int64(i)).build(t))
		if i%50 == 0 {
			if err := r.WaitCommitted(context.Background(), res.LastOffset); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
}
