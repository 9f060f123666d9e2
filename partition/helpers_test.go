package partition

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// testRecord is one record of a test batch.
type testRecord struct {
	timestamp int64
	key       []byte
	value     []byte
}

// testBatch describes a v2 record batch to build.
type testBatch struct {
	records       []testRecord
	producerID    int64 // -1 for none; the zero value means producer 0
	producerEpoch int16
	baseSequence  int32
	codec         kgo.CompressionCodec // zero value: none
	compressed    bool                 // whether codec is set
	attributes    int16                // extra attribute bits (transactional, control)
}

// plain returns an unidempotent batch of n records with timestamps
// ts, ts+1, ...
func plain(n int, ts int64) testBatch {
	b := testBatch{producerID: -1, producerEpoch: -1, baseSequence: -1}
	for i := range n {
		b.records = append(b.records, testRecord{timestamp: ts + int64(i), value: []byte("value")})
	}
	return b
}

// idem returns an idempotent batch of n records.
func idem(producerID int64, epoch int16, sequence int32, n int) testBatch {
	b := plain(n, 1000)
	b.producerID, b.producerEpoch, b.baseSequence = producerID, epoch, sequence
	return b
}

// build encodes a valid v2 batch with base offset 0, leader epoch -1 and a
// correct CRC-32C, compressing the records when asked.
func (tb testBatch) build(t testing.TB) []byte {
	t.Helper()
	if len(tb.records) == 0 {
		t.Fatal("test batch without records")
	}
	base := tb.records[0].timestamp
	maxTimestamp := base
	var records []byte
	for i, r := range tb.records {
		records = record.AppendRecord(records, &record.Record{TimestampDelta: r.timestamp - base, OffsetDelta: int32(i), Key: r.key, Value: r.value})
		maxTimestamp = max(maxTimestamp, r.timestamp)
	}
	attributes := tb.attributes
	if tb.compressed {
		c, err := kgo.DefaultCompressor(tb.codec)
		if err != nil {
			t.Fatal(err)
		}
		out, codec := c.Compress(new(bytes.Buffer), records)
		if codec <= 0 {
			t.Fatalf("compressor used codec %d", codec)
		}
		records = bytes.Clone(out)
		attributes |= int16(codec)
	}
	b := log.AppendBatch(nil, log.BatchHeader{
		PartitionLeaderEpoch: -1,
		Attributes:           attributes,
		LastOffsetDelta:      int32(len(tb.records) - 1),
		BaseTimestamp:        base,
		MaxTimestamp:         maxTimestamp,
		ProducerID:           tb.producerID,
		ProducerEpoch:        tb.producerEpoch,
		BaseSequence:         tb.baseSequence,
		RecordCount:          int32(len(tb.records)),
	}, records)
	if _, err := log.VerifyProducedBatch(b); err != nil && tb.attributes == 0 {
		t.Fatalf("test batch does not verify: %v", err)
	}
	return b
}

// concat builds several batches into one request.
func concat(t testing.TB, batches ...testBatch) []byte {
	t.Helper()
	var b []byte
	for _, tb := range batches {
		b = append(b, tb.build(t)...)
	}
	return b
}

// fixedClock returns a clock stuck at ms milliseconds since the epoch.
func fixedClock(ms int64) func() time.Time {
	return func() time.Time { return time.UnixMilli(ms) }
}

// testEnv is where a test's replicas live.
type testEnv struct {
	fs   *log.MemFS
	dir  string
	cfg  Config
	opts Options
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	fs := log.NewMemFS()
	return &testEnv{
		fs:   fs,
		dir:  "/data/topics/t-0",
		cfg:  DefaultConfig(),
		opts: Options{FS: fs, Now: fixedClock(1_700_000_000_000)},
	}
}

// open opens the env's replica and closes it at cleanup unless the test
// did.
func (e *testEnv) open(t testing.TB) *Replica {
	t.Helper()
	r, err := Open(e.dir, "t", 0, e.cfg, e.opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// mustAppend appends and fails the test on error.
func mustAppend(t testing.TB, r *Replica, b []byte) AppendResult {
	t.Helper()
	res, err := r.Append(b)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return res
}

// readAll returns every committed batch's bytes and headers.
func readAll(t testing.TB, r *Replica) ([]byte, []log.BatchHeader) {
	t.Helper()
	o := r.Offsets()
	res, err := r.Read(nil, ReadRequest{Offset: o.LogStart, MaxBytes: 1 << 30})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	var headers []log.BatchHeader
	if err := log.SplitBatches(res.Records, func(_ []byte, h log.BatchHeader) error {
		headers = append(headers, h)
		return nil
	}); err != nil {
		t.Fatalf("read back batches: %v", err)
	}
	return res.Records, headers
}

// fixCRC recomputes the CRC-32C of the whole batch b after a test changed
// covered bytes.
func fixCRC(b []byte) { log.SetCRC(b) }
