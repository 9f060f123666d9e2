package partition

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// storedRecord is a record read back from the log.
type storedRecord struct {
	offset    int64
	key       string
	value     string
	tombstone bool
}

// readRecords reads every committed record, checking that batches verify
// and offsets strictly increase.
func readRecords(t testing.TB, r *Replica) []storedRecord {
	t.Helper()
	data, _ := readAll(t, r)
	var out []storedRecord
	last := int64(-1)
	err := log.SplitBatches(data, func(batch []byte, h log.BatchHeader) error {
		if h.BaseOffset <= last {
			return fmt.Errorf("batch at %d after offset %d", h.BaseOffset, last)
		}
		_, it, err := record.Records(batch, MaxDecompressedBytes)
		if err != nil {
			return err
		}
		n := 0
		for it.Next() {
			rec := it.Record()
			offset := h.BaseOffset + int64(rec.OffsetDelta)
			if offset <= last || offset > h.LastOffset() {
				return fmt.Errorf("record offset %d after %d in batch [%d, %d]", offset, last, h.BaseOffset, h.LastOffset())
			}
			last = offset
			n++
			out = append(out, storedRecord{offset: offset, key: string(rec.Key), value: string(rec.Value), tombstone: rec.Value == nil})
		}
		err = it.Err()
		if err == nil && n != int(h.RecordCount) {
			err = fmt.Errorf("batch at %d counts %d records, holds %d", h.BaseOffset, h.RecordCount, n)
		}
		last = h.LastOffset()
		return err
	})
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	return out
}

// compactEnv is a compacted topic with small segments.
func compactEnv(t *testing.T) (*testEnv, *testClock) {
	t.Helper()
	env := newEnv(t)
	clock := &testClock{ms: 1_700_000_000_000}
	env.opts.Now = clock.now
	env.cfg.CleanupPolicy = CleanupCompact
	env.cfg.Log.SegmentBytes = 400
	env.cfg.MinCleanableDirtyRatio = 0
	env.cfg.DeleteRetention = time.Hour
	return env, clock
}

func mustCompact(t testing.TB, r *Replica, clock *testClock, limits CleanLimits) CleanResult {
	t.Helper()
	res, err := r.Compact(context.Background(), clock.now(), limits)
	if err != nil {
		t.Fatalf("Compact: %v", err)
	}
	return res
}

func TestCompactBasic(t *testing.T) {
	env, clock := compactEnv(t)
	env.cfg.Log.SegmentBytes = 100 // a segment per batch
	r := env.open(t)
	ts := clock.ms
	for _, b := range [][]kv{
		{{key: "a", value: "a1", ts: ts}, {key: "b", value: "b1", ts: ts}},
		{{key: "a", value: "a2", ts: ts}, {key: "c", value: "c1", ts: ts}},
		{{key: "b", tombstone: true, ts: ts}, {key: "d", value: "d1", ts: ts}},
		{{key: "c", value: "c2", ts: ts}},
		{{key: "e", value: "e1", ts: ts}}, // stays in the active segment
	} {
		mustAppend(t, r, kvBatch(t, noProducer, b...))
	}
	if n := len(r.log.Segments()); n < 3 {
		t.Fatalf("%d segments, want several", n)
	}
	res := mustCompact(t, r, clock, CleanLimits{})
	if !res.Cleaned || res.RecordsRemoved != 3 || res.TombstonesRemoved != 0 {
		t.Fatalf("first clean %+v, want a1, b1, c1 removed", res)
	}
	got := func() string {
		var parts []string
		for _, rec := range readRecords(t, r) {
			v := rec.value
			if rec.tombstone {
				v = "<nil>"
			}
			parts = append(parts, fmt.Sprintf("%d:%s=%s", rec.offset, rec.key, v))
		}
		return strings.Join(parts, " ")
	}
	if want := "2:a=a2 4:b=<nil> 5:d=d1 6:c=c2 7:e=e1"; got() != want {
		t.Fatalf("after the first clean:\n%s\nwant\n%s", got(), want)
	}
	// Nothing dirty, tombstone horizon not reached: not due.
	if res := mustCompact(t, r, clock, CleanLimits{}); res.Cleaned {
		t.Fatalf("clean with nothing due: %+v", res)
	}
	clock.advance(2 * time.Hour)
	res = mustCompact(t, r, clock, CleanLimits{})
	if !res.Cleaned || res.TombstonesRemoved != 1 {
		t.Fatalf("clean past the delete horizon: %+v", res)
	}
	if want := "2:a=a2 5:d=d1 6:c=c2 7:e=e1"; got() != want {
		t.Fatalf("after the tombstone went:\n%s\nwant\n%s", got(), want)
	}
	if s := r.Stats(); s.RecordsCompacted != 4 || s.Compactions != 2 {
		t.Fatalf("stats %+v", s)
	}
	// Reopen: same content, the log starts where it did.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = env.open(t)
	if want := "2:a=a2 5:d=d1 6:c=c2 7:e=e1"; got() != want {
		t.Fatalf("after reopen:\n%s\nwant\n%s", got(), want)
	}
	if o := r.Offsets(); o.LogStart != 0 || o.LogEnd != 8 {
		t.Fatalf("offsets after reopen %+v", o)
	}
}

func TestCompactNotDue(t *testing.T) {
	env, clock := compactEnv(t)
	env.cfg.MinCompactionLag = time.Hour
	r := env.open(t)
	for i := range 6 {
		mustAppend(t, r, kvBatch(t, noProducer, kv{key: "a", value: fmt.Sprint(i), ts: clock.ms}))
	}
	if res := mustCompact(t, r, clock, CleanLimits{}); res.Cleaned {
		t.Fatalf("cleaned records younger than min.compaction.lag.ms: %+v", res)
	}
	clock.advance(2 * time.Hour)
	if res := mustCompact(t, r, clock, CleanLimits{}); !res.Cleaned || res.RecordsRemoved != 4 {
		t.Fatalf("clean after the lag: %+v", res)
	}
	// Delete-only topics are never compacted.
	cfg := r.Config()
	cfg.CleanupPolicy = CleanupDelete
	if err := r.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		mustAppend(t, r, kvBatch(t, noProducer, kv{key: "a", value: fmt.Sprint("x", i), ts: clock.ms}))
	}
	if res := mustCompact(t, r, clock, CleanLimits{}); res.Cleaned {
		t.Fatalf("compacted a delete-only topic: %+v", res)
	}
	clock.advance(2 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg.CleanupPolicy = CleanupCompact
	if err := r.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Compact(ctx, clock.now(), CleanLimits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Compact with a cancelled context: %v", err)
	}
}

// model is what a compacted log must hold: the newest value per key.
type model struct {
	latest map[string]storedRecord
}

// workload appends random keyed records, updates and tombstones, in plain,
// compressed and idempotent batches, compacting as it goes.
type workload struct {
	t        *testing.T
	rng      *rand.Rand
	r        *Replica
	clock    *testClock
	m        model
	sequence int32
	appended int
	// lastIdempotent is the producer's last batch, for a retry.
	lastIdempotent []byte
}

func (w *workload) step(n int) {
	codecs := []record.Codec{record.None, record.Gzip, record.Snappy, record.LZ4, record.Zstd}
	for range n {
		count := 1 + w.rng.IntN(5)
		var records []kv
		for range count {
			rec := kv{key: fmt.Sprintf("k%02d", w.rng.IntN(40)), ts: w.clock.ms}
			if w.rng.IntN(8) == 0 {
				rec.tombstone = true
			} else {
				rec.value = fmt.Sprintf("v%d", w.appended)
			}
			w.appended++
			records = append(records, rec)
		}
		o := noProducer
		if w.rng.IntN(4) == 0 {
			// Compressed batches are costly under the race detector (lz4
			// readers allocate their 4 MiB blocks): one in four.
			o.codec = codecs[1+w.rng.IntN(len(codecs)-1)]
		}
		if w.rng.IntN(3) == 0 {
			o.producerID, o.producerEpoch, o.sequence = 7, 0, w.sequence
			w.sequence += int32(count)
		}
		b := kvBatch(w.t, o, records...)
		if o.producerID >= 0 {
			w.lastIdempotent = slices.Clone(b)
		}
		res := mustAppend(w.t, w.r, b)
		for i, rec := range records {
			w.m.latest[rec.key] = storedRecord{offset: res.BaseOffset + int64(i), key: rec.key, value: rec.value, tombstone: rec.tombstone}
		}
		w.clock.advance(time.Minute)
	}
}

// check compares the log with the model: every key's newest value is the
// last record of that key (a tombstone may be gone once past its delete
// retention), and below cleanedTo no key appears twice.
func (w *workload) check(r *Replica, cleanedTo int64) {
	w.t.Helper()
	last := map[string]storedRecord{}
	seen := map[string]int64{}
	for _, rec := range readRecords(w.t, r) {
		if rec.key == "" {
			w.t.Fatalf("keyless record at %d", rec.offset)
		}
		if prev, ok := seen[rec.key]; ok && rec.offset < cleanedTo {
			w.t.Fatalf("key %s at %d and %d, both below the cleaned offset %d", rec.key, prev, rec.offset, cleanedTo)
		}
		seen[rec.key] = rec.offset
		last[rec.key] = rec
	}
	for key, want := range w.m.latest {
		got, ok := last[key]
		switch {
		case !ok && want.tombstone:
		case !ok:
			w.t.Fatalf("key %s lost; want %+v", key, want)
		case got != want:
			w.t.Fatalf("key %s: newest in the log %+v, want %+v", key, got, want)
		}
	}
	for key := range last {
		if _, ok := w.m.latest[key]; !ok {
			w.t.Fatalf("key %s never written", key)
		}
	}
}

func TestCompactRandom(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			env, clock := compactEnv(t)
			env.cfg.DeleteRetention = 30 * time.Minute
			r := env.open(t)
			w := &workload{t: t, rng: rand.New(rand.NewPCG(seed, 1)), r: r, clock: clock, m: model{latest: map[string]storedRecord{}}}
			limits := CleanLimits{MaxMapBytes: int64(10+seed*20) * (mapEntryOverhead + 3)}
			var cleanedTo int64
			for range 20 {
				w.step(10)
				res := mustCompact(t, r, clock, limits)
				if res.Cleaned {
					cleanedTo = res.FirstDirtyOffsetAfterClean
				}
				w.check(r, cleanedTo)
			}
			before := len(readRecords(t, r))
			for range 5 {
				clock.advance(time.Hour)
				mustCompact(t, r, clock, limits)
			}
			w.check(r, 0)
			if after := len(readRecords(t, r)); after > before || r.Stats().RecordsCompacted == 0 {
				t.Fatalf("%d records before the last cleans, %d after; stats %+v", before, after, r.Stats())
			}
			// Restart after a crash: the same content, and the producer's
			// sequence goes on (its last batch survived compaction).
			if err := r.log.Sync(); err != nil {
				t.Fatal(err)
			}
			env.fs = env.fs.CrashClone()
			env.opts.FS = env.fs
			r2 := env.open(t)
			w.check(r2, 0)
			if w.lastIdempotent != nil {
				if res, err := r2.Append(w.lastIdempotent); err != nil || !res.Duplicate {
					t.Fatalf("retry of the producer's last batch after restart: %+v, %v", res, err)
				}
				o := noProducer
				o.producerID, o.producerEpoch, o.sequence = 7, 0, w.sequence
				if _, err := r2.Append(kvBatch(t, o, kv{key: "k00", value: "next", ts: clock.ms})); err != nil {
					t.Fatalf("the producer's next batch after restart: %v", err)
				}
			}
		})
	}
}

// stepFS records a power-cut clone of its MemFS before every rename,
// remove and directory sync while armed: each is a point a crash may hit.
type stepFS struct {
	*log.MemFS
	armed  bool
	clones []*log.MemFS
}

func (f *stepFS) step() {
	if f.armed {
		f.clones = append(f.clones, f.MemFS.CrashClone())
	}
}

func (f *stepFS) Rename(oldPath, newPath string) error {
	f.step()
	return f.MemFS.Rename(oldPath, newPath)
}

func (f *stepFS) Remove(path string) error {
	f.step()
	return f.MemFS.Remove(path)
}

func (f *stepFS) SyncDir(path string) error {
	f.step()
	return f.MemFS.SyncDir(path)
}

// TestCompactCrash crashes a clean at every rename, remove and directory
// sync: Open must yield a valid log holding every key's newest value,
// without leftover cleaner files.
func TestCompactCrash(t *testing.T) {
	env, clock := compactEnv(t)
	fs := &stepFS{MemFS: env.fs}
	env.opts.FS = fs
	r := env.open(t)
	w := &workload{t: t, rng: rand.New(rand.NewPCG(9, 9)), r: r, clock: clock, m: model{latest: map[string]storedRecord{}}}
	w.step(30)
	mustCompact(t, r, clock, CleanLimits{}) // some tombstones get a horizon
	w.step(20)
	clock.advance(2 * time.Hour)
	if err := r.log.Sync(); err != nil {
		t.Fatal(err)
	}
	fs.armed = true
	res := mustCompact(t, r, clock, CleanLimits{})
	fs.armed = false
	if !res.Cleaned || res.RecordsRemoved == 0 {
		t.Fatalf("clean %+v", res)
	}
	if len(fs.clones) < 8 {
		t.Fatalf("only %d crash points", len(fs.clones))
	}
	t.Logf("%d crash points in a clean of %d -> %d bytes", len(fs.clones), res.BytesBefore, res.BytesAfter)
	w.check(r, 0)
	for i, clone := range append(fs.clones, fs.MemFS.CrashClone()) {
		r2, err := Open(env.dir, "t", 0, env.cfg, Options{FS: clone, Now: clock.now})
		if err != nil {
			t.Fatalf("crash point %d: Open: %v", i, err)
		}
		w.check(r2, 0)
		if o := r2.Offsets(); o.LogEnd != r.Offsets().LogEnd || o.LogStart != 0 {
			t.Fatalf("crash point %d: offsets %+v", i, o)
		}
		names, _ := clone.ReadDir(env.dir)
		for _, name := range names {
			if strings.HasSuffix(name, ".cleaned") || strings.HasSuffix(name, ".swap") {
				t.Fatalf("crash point %d: %s left after Open", i, name)
			}
		}
		if i%8 == 0 {
			// The recovered log compacts again.
			if _, err := r2.Compact(context.Background(), clock.now(), CleanLimits{}); err != nil {
				t.Fatalf("crash point %d: Compact after recovery: %v", i, err)
			}
			w.check(r2, 0)
		}
		if err := r2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
