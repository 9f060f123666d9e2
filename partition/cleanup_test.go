package partition

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// testClock is a clock tests move by hand.
type testClock struct{ ms int64 }

func (c *testClock) now() time.Time          { return time.UnixMilli(c.ms) }
func (c *testClock) advance(d time.Duration) { c.ms += d.Milliseconds() }

// kv is one record of kvBatch: a key, and a value or a tombstone.
type kv struct {
	key, value string
	tombstone  bool
	ts         int64
}

// batchOptions are kvBatch's producer and codec.
type batchOptions struct {
	codec         record.Codec
	producerID    int64
	producerEpoch int16
	sequence      int32
}

var noProducer = batchOptions{producerID: -1, producerEpoch: -1, sequence: -1}

// kvBatch builds a produced batch of keyed records.
func kvBatch(t testing.TB, o batchOptions, records ...kv) []byte {
	t.Helper()
	bld := record.Builder{Codec: o.codec, Producer: &record.Producer{ID: o.producerID, Epoch: o.producerEpoch, BaseSequence: o.sequence}}
	for _, r := range records {
		key, value := []byte(r.key), []byte(r.value)
		if r.key == "" {
			key = nil
		}
		if r.tombstone {
			value = nil
		}
		bld.Add(r.ts, key, value)
	}
	b, err := bld.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.VerifyProducedBatch(b); err != nil {
		t.Fatalf("kvBatch: %v", err)
	}
	return b
}

func TestSetConfig(t *testing.T) {
	env := newEnv(t)
	r := env.open(t)
	cfg := r.Config()
	cfg.Log.SegmentBytes = 200
	cfg.RetentionBytes = 1000
	if err := r.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if got := r.Config(); got.RetentionBytes != 1000 || got.Log.SegmentBytes != 200 {
		t.Fatalf("Config after SetConfig = %+v", got)
	}
	for range 5 {
		mustAppend(t, r, plain(3, 1_700_000_000_000).build(t))
	}
	if n := len(r.log.Segments()); n < 3 {
		t.Fatalf("%d segments after appends with segment.bytes 200, want a roll per batch", n)
	}
	// A request bigger than the new segment size is refused.
	if _, err := r.Append(plain(20, 1_700_000_000_000).build(t)); !errors.Is(err, kerr.RecordListTooLarge) {
		t.Fatalf("Append above segment.bytes: %v", err)
	}
	bad := cfg
	bad.MinCleanableDirtyRatio = 2
	if err := r.SetConfig(bad); err == nil {
		t.Fatal("SetConfig accepted an invalid config")
	}
	if got := r.Config(); got.MinCleanableDirtyRatio != cfg.MinCleanableDirtyRatio {
		t.Fatal("a failed SetConfig changed the config")
	}
}

func TestAppendTimestampBounds(t *testing.T) {
	const now = 1_700_000_000_000
	for _, tc := range []struct {
		name   string
		ts     int64
		logApp bool
		want   error
	}{
		{"now", now, false, nil},
		{"just within before", now - 3_600_000, false, nil},
		{"too old", now - 3_600_001, false, kerr.InvalidTimestamp},
		{"too new", now + 60_001, false, kerr.InvalidTimestamp},
		{"no timestamp", -1, false, nil},
		{"log append time ignores it", now - 1e9, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			env.cfg.TimestampBeforeMax = time.Hour
			env.cfg.TimestampAfterMax = time.Minute
			if tc.logApp {
				env.cfg.TimestampType = LogAppendTime
			}
			r := env.open(t)
			_, err := r.Append(plain(1, tc.ts).build(t))
			if !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
				t.Fatalf("Append = %v, want %v", err, tc.want)
			}
			if tc.want != nil && r.Offsets().LogEnd != 0 {
				t.Fatal("a rejected batch was written")
			}
		})
	}
}

func TestAppendKeylessToCompactedTopic(t *testing.T) {
	for _, policy := range []CleanupPolicy{CleanupCompact, CleanupCompact | CleanupDelete} {
		env := newEnv(t)
		env.cfg.CleanupPolicy = policy
		r := env.open(t)
		for _, codec := range []record.Codec{record.None, record.Zstd} {
			o := noProducer
			o.codec = codec
			if _, err := r.Append(kvBatch(t, o, kv{key: "a", value: "1"}, kv{value: "keyless"})); !errors.Is(err, kerr.InvalidRecord) {
				t.Fatalf("policy %d codec %d: keyless record: %v", policy, codec, err)
			}
			mustAppend(t, r, kvBatch(t, o, kv{key: "a", value: "1"}, kv{key: "b", tombstone: true}))
		}
	}
	// Delete-only topics take keyless records.
	env := newEnv(t)
	mustAppend(t, env.open(t), kvBatch(t, noProducer, kv{value: "keyless"}))
}
