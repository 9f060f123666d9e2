package partition

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// retentionEnv is a replica with one-batch segments and a hand-moved clock.
func retentionEnv(t *testing.T, edit func(*Config)) (*testEnv, *testClock) {
	t.Helper()
	env := newEnv(t)
	clock := &testClock{ms: 1_700_000_000_000}
	env.opts.Now = clock.now
	env.cfg.Log.SegmentBytes = 100 // every batch rolls a segment
	env.cfg.RetentionTime = -1
	if edit != nil {
		edit(&env.cfg)
	}
	return env, clock
}

// appendAged appends n one-batch segments whose max timestamps are the
// given ones, returning each batch's size.
func appendAged(t *testing.T, r *Replica, timestamps ...int64) []int64 {
	t.Helper()
	var sizes []int64
	for _, ts := range timestamps {
		b := plain(1, ts).build(t)
		mustAppend(t, r, b)
		sizes = append(sizes, int64(len(b)))
	}
	return sizes
}

func TestEnforceRetention(t *testing.T) {
	const now = 1_700_000_000_000
	hour := time.Hour.Milliseconds()
	keyed := func(ts int64) testBatch {
		b := plain(1, ts)
		b.records[0].key = []byte("k") // compact topics need keys
		return b
	}
	batchSize := int64(len(keyed(now).build(t)))
	for _, tc := range []struct {
		name       string
		edit       func(*Config)
		timestamps []int64
		wantStart  int64
	}{
		{"forever", nil, []int64{0, 0, 0}, 0},
		{"by time", func(c *Config) { c.RetentionTime = time.Hour },
			[]int64{now - 3*hour, now - 2*hour, now - hour/2, now - 3*hour, now}, 2},
		{"time never the active segment", func(c *Config) { c.RetentionTime = time.Hour },
			[]int64{now - 3*hour, now - 3*hour, now - 3*hour}, 2},
		{"exactly at the limit stays", func(c *Config) { c.RetentionTime = time.Hour },
			[]int64{now - hour, now}, 0},
		{"by size", func(c *Config) { c.RetentionBytes = 2*batchSize + batchSize/2 }, []int64{now, now, now, now, now}, 2},
		{"size never the active segment", func(c *Config) { c.RetentionBytes = 0 }, []int64{now, now, now}, 2},
		{"time then size", func(c *Config) { c.RetentionTime = time.Hour; c.RetentionBytes = 2*batchSize + batchSize/2 },
			[]int64{now - 2*hour, now, now, now, now, now}, 3},
		{"compact only keeps all", func(c *Config) { c.RetentionTime = time.Hour; c.CleanupPolicy = CleanupCompact },
			[]int64{now - 3*hour, now}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, clock := retentionEnv(t, tc.edit)
			r := env.open(t)
			var records []testBatch
			for _, ts := range tc.timestamps {
				b := keyed(ts)
				records = append(records, b)
				mustAppend(t, r, b.build(t))
			}
			before := r.log.Segments()
			res, err := r.EnforceRetention(clock.now())
			if err != nil {
				t.Fatal(err)
			}
			if res.LogStartOffset != tc.wantStart || r.Offsets().LogStart != tc.wantStart {
				t.Fatalf("log start %d (result %d), want %d", r.Offsets().LogStart, res.LogStartOffset, tc.wantStart)
			}
			var bytes int64
			for _, s := range before[:tc.wantStart] {
				bytes += s.Size
			}
			if res.SegmentsDeleted != int(tc.wantStart) || res.BytesDeleted != bytes {
				t.Fatalf("result %+v, want %d segments of %d bytes", res, tc.wantStart, bytes)
			}
			if s := r.Stats(); s.SegmentsDeleted != int64(res.SegmentsDeleted) || s.BytesDeleted != bytes {
				t.Fatalf("stats %+v", s)
			}
			if tc.wantStart > 0 {
				if _, err := r.Read(nil, ReadRequest{Offset: tc.wantStart - 1, MaxBytes: 1 << 20}); !errors.Is(err, kerr.OffsetOutOfRange) {
					t.Fatalf("Read below the log start: %v", err)
				}
			}
			if _, headers := readAll(t, r); len(headers) != len(tc.timestamps)-int(tc.wantStart) {
				t.Fatalf("%d batches left, want %d", len(headers), len(tc.timestamps)-int(tc.wantStart))
			}
			// A second pass deletes nothing more.
			if res, err := r.EnforceRetention(clock.now()); err != nil || res.SegmentsDeleted != 0 {
				t.Fatalf("second pass: %+v, %v", res, err)
			}
		})
	}
}

func TestRetentionSparesHighWatermark(t *testing.T) {
	env, clock := retentionEnv(t, func(c *Config) { c.RetentionTime = time.Hour })
	r := env.open(t)
	appendAged(t, r, 0, 0, 0, 0)
	// Pretend offsets from 1 on are not committed yet.
	r.hwm.Store(1)
	r.txns.update(&r.hwm)
	res, err := r.EnforceRetention(clock.now())
	if err != nil || res.LogStartOffset != 1 {
		t.Fatalf("EnforceRetention = %+v, %v; want log start 1", res, err)
	}
}

// TestRetentionSparesCleanFloor: a replicated partition's Raft window
// (SetCleanFloor) bounds retention as the high watermark does.
func TestRetentionSparesCleanFloor(t *testing.T) {
	env, clock := retentionEnv(t, func(c *Config) { c.RetentionTime = time.Hour })
	r := env.open(t)
	appendAged(t, r, 0, 0, 0, 0)
	floor := int64(2)
	r.SetCleanFloor(func() int64 { return floor })
	res, err := r.EnforceRetention(clock.now())
	if err != nil || res.LogStartOffset != 2 {
		t.Fatalf("EnforceRetention = %+v, %v; want log start 2 (the floor)", res, err)
	}
	floor = 4
	r.SetCleanFloor(nil)
	if res, err := r.EnforceRetention(clock.now()); err != nil || res.LogStartOffset != 3 {
		t.Fatalf("without the floor: %+v, %v; want log start 3 (all but the active segment)", res, err)
	}
}

// TestRetentionAndAgeRoll rolls segments by segment.ms with the injected
// clock and lets time retention delete them as they age.
func TestRetentionAndAgeRoll(t *testing.T) {
	env, clock := retentionEnv(t, func(c *Config) {
		c.Log.SegmentBytes = 1 << 20
		c.Log.SegmentAge = time.Hour
		c.RetentionTime = 3 * time.Hour
	})
	r := env.open(t)
	for range 6 {
		mustAppend(t, r, plain(2, clock.ms).build(t))
		mustAppend(t, r, plain(2, clock.ms).build(t))
		clock.advance(time.Hour)
	}
	if n := len(r.log.Segments()); n != 6 {
		t.Fatalf("%d segments after six hours of appends, want one per hour", n)
	}
	res, err := r.EnforceRetention(clock.now())
	if err != nil {
		t.Fatal(err)
	}
	// Segments whose newest record is older than three hours: the first
	// three (written 6h, 5h and 4h ago).
	if res.SegmentsDeleted != 3 || res.LogStartOffset != 12 {
		t.Fatalf("EnforceRetention = %+v, want 3 segments deleted, start 12", res)
	}
	clock.advance(10 * time.Hour)
	if res, err = r.EnforceRetention(clock.now()); err != nil || res.LogStartOffset != 20 {
		t.Fatalf("all expired: %+v, %v; want start 20 (the active segment stays)", res, err)
	}
	if o := r.Offsets(); o.LogEnd != 24 {
		t.Fatalf("offsets %+v", o)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	env, _ := retentionEnv(t, nil)
	env.cfg.Log.SegmentBytes = 300 // a few batches per segment
	r := env.open(t)
	for range 10 {
		mustAppend(t, r, plain(3, 1_700_000_000_000).build(t)) // 30 offsets
	}
	if err := r.log.Sync(); err != nil {
		t.Fatal(err)
	}
	segs := r.log.Segments()
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	inside := segs[1].BaseOffset + 4 // inside a batch of the second segment
	for _, tc := range []struct {
		offset, want int64
		err          error
	}{
		{31, -1, kerr.OffsetOutOfRange},
		{-2, -1, kerr.OffsetOutOfRange},
		{inside, inside, nil},
		{2, inside, nil}, // below the start: nothing changes
	} {
		got, err := r.DeleteRecordsBefore(tc.offset)
		if got != tc.want || !errors.Is(err, tc.err) && (err != nil || tc.err != nil) {
			t.Fatalf("DeleteRecordsBefore(%d) = %d, %v; want %d, %v", tc.offset, got, err, tc.want, tc.err)
		}
	}
	if n := len(r.log.Segments()); n != len(segs)-1 {
		t.Fatalf("%d segments left, want %d (the first deleted)", n, len(segs)-1)
	}
	if s := r.Stats(); s.SegmentsDeleted != 1 || s.BytesDeleted != segs[0].Size {
		t.Fatalf("stats %+v", s)
	}
	check := func(r *Replica) {
		t.Helper()
		if o := r.Offsets(); o.LogStart != inside || o.LogEnd != 30 {
			t.Fatalf("offsets %+v, want log start %d", o, inside)
		}
		if _, err := r.Read(nil, ReadRequest{Offset: inside - 1, MaxBytes: 1 << 20}); !errors.Is(err, kerr.OffsetOutOfRange) {
			t.Fatalf("Read below the log start: %v", err)
		}
		res, err := r.Read(nil, ReadRequest{Offset: inside, MaxBytes: 1 << 20})
		if err != nil || len(res.Records) == 0 || res.LogStartOffset != inside {
			t.Fatalf("Read at the log start: %d bytes, start %d, %v", len(res.Records), res.LogStartOffset, err)
		}
	}
	check(r)
	crashed := env.fs.CrashClone()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	check(env.open(t))
	env.fs = crashed
	env.opts.FS = crashed
	check(env.open(t))

	// -1 is the high watermark: everything goes but the active segment.
	r2 := env.open(t)
	if got, err := r2.DeleteRecordsBefore(-1); err != nil || got != 30 {
		t.Fatalf("DeleteRecordsBefore(-1) = %d, %v", got, err)
	}
	if n := len(r2.log.Segments()); n != 1 {
		t.Fatalf("%d segments left, want the active one", n)
	}
	if res, err := r2.Read(nil, ReadRequest{Offset: 30, MaxBytes: 1 << 20}); err != nil || len(res.Records) != 0 {
		t.Fatalf("Read at the end: %v", err)
	}
	mustAppend(t, r2, plain(1, 1_700_000_000_000).build(t))
}

func TestDeleteRecordsPolicy(t *testing.T) {
	env := newEnv(t)
	env.cfg.CleanupPolicy = CleanupCompact
	r := env.open(t)
	mustAppend(t, r, kvBatch(t, noProducer, kv{key: "a", value: "1"}))
	if _, err := r.DeleteRecordsBefore(1); !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("DeleteRecordsBefore on a compacted topic: %v", err)
	}
}
