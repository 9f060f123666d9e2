package cleaner

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-io/sluice/partition"
)

// fakeReplica records the calls the cleaner makes and answers with err.
type fakeReplica struct {
	mu          sync.Mutex
	retentions  []time.Time
	compactions int
	err         error
	// block makes Compact wait for its context to end.
	block bool
}

func (r *fakeReplica) EnforceRetention(now time.Time) (partition.RetentionResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retentions = append(r.retentions, now)
	if r.err != nil {
		return partition.RetentionResult{}, r.err
	}
	return partition.RetentionResult{SegmentsDeleted: 1, BytesDeleted: 100}, nil
}

func (r *fakeReplica) Compact(ctx context.Context, now time.Time, limits partition.CleanLimits) (partition.CleanResult, error) {
	r.mu.Lock()
	r.compactions++
	block, err := r.block, r.err
	r.mu.Unlock()
	if block {
		<-ctx.Done()
		return partition.CleanResult{}, ctx.Err()
	}
	if err != nil {
		return partition.CleanResult{}, err
	}
	return partition.CleanResult{Cleaned: true, BytesBefore: 300, BytesAfter: 100, RecordsRemoved: 2}, nil
}

func (r *fakeReplica) calls() (retentions, compactions int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.retentions), r.compactions
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.RetentionCheckInterval = time.Minute
	cfg.Backoff = 10 * time.Second
	return cfg
}

// TestSchedules checks, on a fake clock, that retention runs over every
// target each interval and compaction only over compacted ones each
// backoff, and what the counters say.
func TestSchedules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		deleted, compacted := &fakeReplica{}, &fakeReplica{}
		targets := func() []Target {
			return []Target{{Topic: "d", Replica: deleted}, {Topic: "c", Compacted: true, Replica: compacted}}
		}
		c := Start(testConfig(), targets, Options{})
		defer c.Stop()

		time.Sleep(65 * time.Second)
		synctest.Wait()
		if r, k := deleted.calls(); r != 1 || k != 0 {
			t.Errorf("delete-policy target: %d retentions, %d compactions; want 1, 0", r, k)
		}
		if r, k := compacted.calls(); r != 1 || k != 6 {
			t.Errorf("compacted target: %d retentions, %d compactions; want 1, 6", r, k)
		}
		want := Stats{RetentionChecks: 1, RetentionSegmentsDeleted: 2, RetentionBytesDeleted: 200,
			CompactionRuns: 6, CompactionBytesReclaimed: 6 * 200, CompactionRecordsRemoved: 6 * 2}
		if got := c.Stats(); got != want {
			t.Errorf("stats %+v, want %+v", got, want)
		}
	})
}

// TestSetConfigRestartsTimers checks that a new schedule takes effect at
// once: a shorter interval from the change, a disabled cleaner never runs.
func TestSetConfigRestartsTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &fakeReplica{}
		c := Start(testConfig(), func() []Target { return []Target{{Compacted: true, Replica: r}} }, Options{})
		defer c.Stop()

		time.Sleep(35 * time.Second) // 3 compactions, no retention yet
		synctest.Wait()
		cfg := testConfig()
		cfg.RetentionCheckInterval = 5 * time.Second
		cfg.Enable = false
		c.SetConfig(cfg)
		if got := c.Config(); got != cfg {
			t.Fatalf("Config() = %+v after SetConfig(%+v)", got, cfg)
		}
		time.Sleep(7 * time.Second)
		synctest.Wait()
		if ret, comp := r.calls(); ret != 1 || comp != 3 {
			t.Errorf("%d retentions, %d compactions; want 1 (5s after the change), 3 (none once disabled)", ret, comp)
		}
	})
}

// TestFailuresAndClosedReplicas checks that a closed replica is skipped
// silently and any other failure is counted, and that the pass goes on.
func TestFailuresAndClosedReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		closed := &fakeReplica{err: partition.ErrClosed}
		broken := &fakeReplica{err: errors.New("disk on fire")}
		fine := &fakeReplica{}
		targets := func() []Target {
			return []Target{{Compacted: true, Replica: closed}, {Compacted: true, Replica: broken}, {Compacted: true, Replica: fine}}
		}
		cfg := testConfig()
		cfg.Backoff = time.Minute
		c := Start(cfg, targets, Options{})
		defer c.Stop()

		time.Sleep(61 * time.Second)
		synctest.Wait()
		if ret, comp := fine.calls(); ret != 1 || comp != 1 {
			t.Errorf("healthy replica after failing ones: %d retentions, %d compactions; want 1, 1", ret, comp)
		}
		if s := c.Stats(); s.Errors != 2 || s.RetentionSegmentsDeleted != 1 || s.CompactionRuns != 1 {
			t.Errorf("stats %+v: want 2 errors (retention and compaction of the broken replica), 1 segment, 1 compaction", s)
		}
	})
}

// TestStopCancelsCompaction checks that Stop cancels a compaction in
// progress and returns once both goroutines are done.
func TestStopCancelsCompaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &fakeReplica{block: true}
		c := Start(testConfig(), func() []Target { return []Target{{Compacted: true, Replica: r}} }, Options{})
		time.Sleep(11 * time.Second)
		synctest.Wait() // the compaction is blocked
		if _, comp := r.calls(); comp != 1 {
			t.Fatalf("%d compactions started, want 1", comp)
		}
		c.Stop()
		c.Stop() // a second Stop returns too
		if s := c.Stats(); s.Errors != 0 {
			t.Errorf("a cancelled compaction counted as an error: %+v", s)
		}
	})
}

// TestConfigValidate checks that Kafka's defaults validate and what a bad
// schedule's error names.
func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tt := range []struct {
		name   string
		change func(*Config)
	}{
		{"log.retention.check.interval.ms", func(c *Config) { c.RetentionCheckInterval = 0 }},
		{"log.cleaner.backoff.ms", func(c *Config) { c.Backoff = time.Microsecond }},
		{"log.cleaner.dedupe.buffer.size", func(c *Config) { c.DedupeBufferSize = 100 }},
		{"log.cleaner.io.max.bytes.per.second", func(c *Config) { c.IOMaxBytesPerSecond = -1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(&cfg)
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.name) {
				t.Fatalf("err %v, want one naming %s", err, tt.name)
			}
		})
	}
}
