package partition

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/log"
)

// modelRecord is a record as the brute-force model sees it.
type modelRecord struct{ offset, timestamp int64 }

// modelFirstAtOrAfter is OffsetForTimestamp by brute force.
func modelFirstAtOrAfter(records []modelRecord, ts int64) (modelRecord, bool) {
	for _, r := range records {
		if r.timestamp >= ts {
			return r, true
		}
	}
	return modelRecord{}, false
}

// modelMax is MaxTimestamp by brute force: the first record with the
// largest timestamp.
func modelMax(records []modelRecord) (modelRecord, bool) {
	if len(records) == 0 {
		return modelRecord{}, false
	}
	best := records[0]
	for _, r := range records[1:] {
		if r.timestamp > best.timestamp {
			best = r
		}
	}
	return best, true
}

var codecs = []kgo.CompressionCodec{
	kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression(),
}

func TestTimestampLookupsMatchModel(t *testing.T) {
	for seed := range uint64(6) {
		t.Run("", func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed*7+1))
			env := newEnv(t)
			env.cfg.Log.IndexIntervalBytes = 1 + rng.IntN(300) // dense and sparse time indexes
			r := env.open(t)

			if _, _, found, err := r.OffsetForTimestamp(0); found || err != nil {
				t.Fatalf("empty replica: found %v, %v", found, err)
			}
			if _, _, found, err := r.MaxTimestamp(); found || err != nil {
				t.Fatalf("empty replica: found %v, %v", found, err)
			}

			var model []modelRecord
			next := int64(0)
			for range 40 {
				tb := plain(1+rng.IntN(8), 0)
				// Timestamps wander, within and across batches, so that
				// batch max timestamps are not monotonic.
				for i := range tb.records {
					tb.records[i].timestamp = rng.Int64N(1000) + int64(rng.IntN(3))*500
					tb.records[i].value = make([]byte, rng.IntN(64))
				}
				if rng.IntN(2) == 0 {
					tb.codec, tb.compressed = codecs[rng.IntN(len(codecs))], true
				}
				res := mustAppend(t, r, tb.build(t))
				for i, rec := range tb.records {
					model = append(model, modelRecord{res.BaseOffset + int64(i), rec.timestamp})
				}
				next = res.LastOffset + 1
			}
			if r.Offsets().HighWatermark != next {
				t.Fatal("high watermark not at log end")
			}
			for ts := int64(-1); ts <= 2100; ts += 1 + rng.Int64N(7) {
				want, wantFound := modelFirstAtOrAfter(model, ts)
				offset, timestamp, found, err := r.OffsetForTimestamp(ts)
				if err != nil {
					t.Fatal(err)
				}
				if found != wantFound || found && (offset != want.offset || timestamp != want.timestamp) {
					t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", ts, offset, timestamp, found, want.offset, want.timestamp, wantFound)
				}
			}
			want, _ := modelMax(model)
			offset, timestamp, found, err := r.MaxTimestamp()
			if err != nil || !found || offset != want.offset || timestamp != want.timestamp {
				t.Fatalf("MaxTimestamp = %d, %d, %v, %v; want %d, %d", offset, timestamp, found, err, want.offset, want.timestamp)
			}
		})
	}
}

// TestTimestampLookupsLyingBatch covers a producer whose header claims a
// max timestamp no record has: the search continues with later batches.
func TestTimestampLookupsLyingBatch(t *testing.T) {
	r := newEnv(t).open(t)
	liar := plain(2, 10).build(t) // records at 10, 11
	putMaxTimestamp(liar, 500)
	mustAppend(t, r, liar)
	mustAppend(t, r, plain(2, 100).build(t)) // offsets 2, 3 at 100, 101
	offset, timestamp, found, err := r.OffsetForTimestamp(50)
	if err != nil || !found || offset != 2 || timestamp != 100 {
		t.Fatalf("OffsetForTimestamp(50) = %d, %d, %v, %v; want 2, 100", offset, timestamp, found, err)
	}
	if _, _, found, err := r.OffsetForTimestamp(200); found || err != nil {
		t.Fatalf("OffsetForTimestamp(200) found %v, %v", found, err)
	}
}

func putMaxTimestamp(b []byte, ts int64) {
	for i := range 8 {
		b[35+i] = byte(ts >> (56 - 8*i))
	}
	fixCRC(b)
}

// TestTimestampLookupsBelowHighWatermark checks that batches not yet
// synced in durable mode are invisible to timestamp lookups.
func TestTimestampLookupsBelowHighWatermark(t *testing.T) {
	env := newEnv(t)
	flusher := log.NewFlusher(log.FlushConfig{Interval: time.Hour}, nil)
	env.opts.Flusher, env.opts.Durable = flusher, true
	r := openQuiet(t, env)
	t.Cleanup(func() {
		_ = r.Close()
		_ = flusher.Close(context.Background())
	})
	first := mustAppend(t, r, plain(3, 100).build(t)) // 100, 101, 102
	if err := r.WaitCommitted(context.Background(), first.LastOffset); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, r, plain(2, 1000).build(t)) // unsynced: 1000, 1001

	if _, _, found, err := r.OffsetForTimestamp(500); found || err != nil {
		t.Fatalf("OffsetForTimestamp above the high watermark: found %v, %v", found, err)
	}
	offset, timestamp, found, err := r.OffsetForTimestamp(101)
	if err != nil || !found || offset != 1 || timestamp != 101 {
		t.Fatalf("OffsetForTimestamp(101) = %d, %d, %v, %v", offset, timestamp, found, err)
	}
	offset, timestamp, found, err = r.MaxTimestamp()
	if err != nil || !found || offset != 2 || timestamp != 102 {
		t.Fatalf("MaxTimestamp = %d, %d, %v, %v; want 2, 102", offset, timestamp, found, err)
	}
}

func TestLogAppendTime(t *testing.T) {
	env := newEnv(t)
	env.cfg.TimestampType = LogAppendTime
	now := int64(5_000)
	env.opts.Now = func() time.Time { return time.UnixMilli(now) }
	r := env.open(t)

	res := mustAppend(t, r, idem(1, 0, 0, 3).build(t)) // producer timestamps 1000-1002
	if res.LogAppendTime != 5_000 {
		t.Fatalf("LogAppendTime = %d", res.LogAppendTime)
	}
	now = 6_000
	compressed := plain(2, 9_000)
	compressed.codec, compressed.compressed = kgo.Lz4Compression(), true
	mustAppend(t, r, compressed.build(t))
	now = 7_000
	mustAppend(t, r, plain(1, 100).build(t))

	_, headers := readAll(t, r) // SplitBatches verified the rewritten CRCs
	for i, want := range []int64{5_000, 6_000, 7_000} {
		if h := headers[i]; !h.LogAppendTime() || h.MaxTimestamp != want {
			t.Errorf("batch %d: log append time %v, max timestamp %d, want %d", i, h.LogAppendTime(), h.MaxTimestamp, want)
		}
	}

	// A retry answers with the original append time.
	now = 8_000
	retry := mustAppend(t, r, idem(1, 0, 0, 3).build(t))
	if !retry.Duplicate || retry.LogAppendTime != 5_000 || retry.BaseOffset != 0 {
		t.Fatalf("retry: %+v", retry)
	}

	tests := []struct {
		ts                    int64
		wantOffset, wantStamp int64
		wantFound             bool
	}{
		{0, 0, 5_000, true},
		{5_000, 0, 5_000, true},
		{5_001, 3, 6_000, true},
		{6_500, 5, 7_000, true},
		{7_001, 0, 0, false},
	}
	for _, tt := range tests {
		offset, stamp, found, err := r.OffsetForTimestamp(tt.ts)
		if err != nil || found != tt.wantFound || found && (offset != tt.wantOffset || stamp != tt.wantStamp) {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %d, %v", tt.ts, offset, stamp, found, err, tt.wantOffset, tt.wantStamp, tt.wantFound)
		}
	}
	offset, stamp, found, err := r.MaxTimestamp()
	if err != nil || !found || offset != 5 || stamp != 7_000 {
		t.Fatalf("MaxTimestamp = %d, %d, %v, %v", offset, stamp, found, err)
	}
}
