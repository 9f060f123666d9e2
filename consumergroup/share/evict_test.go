package share

import (
	"testing"
	"time"
)

// partitionsInMemory returns how many share-partitions tm holds.
func (tm *testManager) partitionsInMemory() int {
	tm.Manager.mu.Lock()
	defer tm.Manager.mu.Unlock()
	return len(tm.Manager.partitions)
}

func (tm *testManager) reads() int {
	tm.persister.Mu.Lock()
	defer tm.persister.Mu.Unlock()
	return tm.persister.Reads
}

func TestEvictIdle(t *testing.T) {
	tm := newTestManager(t, earliest())
	idle := tm.Manager.cfg.IdleTimeout
	tm.data.produce(t, 2)
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{0, 1, 1})

	// Acquired records live only in memory: never evicted, however old.
	tm.clock.advance(2 * idle)
	if n := tm.evictIdle(); n != 0 || tm.partitionsInMemory() != 1 {
		t.Fatalf("evicted %d with records acquired; %d in memory", n, tm.partitionsInMemory())
	}
	// The locks expired meanwhile: the late acknowledgement is refused
	// and the records are delivered again.
	if err := tm.ack(t, "m1", 0, 1, AckAccept); err == nil {
		t.Fatal("accepted records whose lock expired")
	}
	wantRanges(t, tm.acquire(t, "m2", 500), AcquiredRange{0, 1, 2})
	if err := tm.ack(t, "m2", 0, 1, AckAccept); err != nil {
		t.Fatal(err)
	}

	// Used less than the idle timeout ago: kept.
	tm.clock.advance(idle - time.Second)
	if n := tm.evictIdle(); n != 0 {
		t.Fatalf("evicted %d share-partitions used %s ago", n, idle-time.Second)
	}

	// Idle, nothing acquired, nothing unstored: evicted, and the group's
	// long-poll channel is closed and forgotten.
	changed := tm.Changed("g")
	tm.clock.advance(time.Second)
	if n := tm.evictIdle(); n != 1 || tm.partitionsInMemory() != 0 {
		t.Fatalf("evicted %d idle share-partitions; %d left in memory", n, tm.partitionsInMemory())
	}
	select {
	case <-changed:
	default:
		t.Fatal("the long-poll channel of a group with no share-partition left was not closed")
	}
	tm.Manager.mu.Lock()
	waits := len(tm.Manager.changed)
	tm.Manager.mu.Unlock()
	if waits != 0 {
		t.Fatalf("%d long-poll channels kept", waits)
	}

	// The next use reads the stored state again: the accepted records
	// stay accepted, the next one is delivered.
	reads := tm.reads()
	tm.data.produce(t, 1)
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{2, 2, 1})
	if tm.reads() != reads+1 {
		t.Fatalf("stored state read %d times on reuse, want 1", tm.reads()-reads)
	}
}

func TestEvictIdleKeepsWriteInFlight(t *testing.T) {
	tm := newTestManager(t, earliest())
	tm.data.produce(t, 1)
	wantRanges(t, tm.acquire(t, "m1", 500), AcquiredRange{0, 0, 1})
	if err := tm.ack(t, "m1", 0, 0, AckAccept); err != nil {
		t.Fatal(err)
	}
	tm.Manager.mu.Lock()
	sp := tm.Manager.partitions[tm.key()]
	tm.Manager.mu.Unlock()
	// A write in flight (its lock released meanwhile): not idle.
	sp.mu.Lock()
	sp.writing = make(chan struct{})
	sp.mu.Unlock()
	tm.clock.advance(2 * tm.Manager.cfg.IdleTimeout)
	if n := tm.evictIdle(); n != 0 {
		t.Fatalf("evicted %d share-partitions with a write in flight", n)
	}
	// In use (its lock held): not idle either.
	sp.mu.Lock()
	sp.writing = nil
	if n := tm.evictIdle(); n != 0 {
		t.Fatalf("evicted %d share-partitions in use", n)
	}
	sp.mu.Unlock()
	if n := tm.evictIdle(); n != 1 {
		t.Fatalf("evicted %d, want the share-partition once idle", n)
	}
}

func TestEvictInterval(t *testing.T) {
	for _, tc := range []struct{ idle, want time.Duration }{
		{5 * time.Minute, time.Minute},
		{2 * time.Minute, 30 * time.Second},
		{time.Second, time.Second},
	} {
		if got := evictInterval(tc.idle); got != tc.want {
			t.Errorf("evictInterval(%s) = %s, want %s", tc.idle, got, tc.want)
		}
	}
}
