package log

import (
	"encoding/binary"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// makeBatch builds a valid uncompressed v2 batch at base with one record per
// timestamp, each with a value of valueSize bytes.
func makeBatch(base int64, timestamps []int64, valueSize int) []byte {
	if len(timestamps) == 0 {
		panic("makeBatch: no records")
	}
	var records []byte
	first, maxTS := timestamps[0], timestamps[0]
	for i, ts := range timestamps {
		maxTS = max(maxTS, ts)
		var rec []byte
		rec = append(rec, 0) // attributes
		rec = binary.AppendVarint(rec, ts-first)
		rec = binary.AppendVarint(rec, int64(i))
		rec = binary.AppendVarint(rec, -1) // no key
		rec = binary.AppendVarint(rec, int64(valueSize))
		for j := range valueSize {
			rec = append(rec, byte(int(base)+i+j))
		}
		rec = binary.AppendVarint(rec, 0) // no headers
		records = binary.AppendVarint(records, int64(len(rec)))
		records = append(records, rec...)
	}
	return AppendBatch(nil, BatchHeader{
		BaseOffset:           base,
		PartitionLeaderEpoch: 1,
		LastOffsetDelta:      int32(len(timestamps) - 1),
		BaseTimestamp:        first,
		MaxTimestamp:         maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		RecordCount:          int32(len(timestamps)),
	}, records)
}

// simpleBatch builds a batch of n records at base with timestamps base*10+i.
func simpleBatch(base int64, n, valueSize int) []byte {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = base*10 + int64(i)
	}
	return makeBatch(base, ts, valueSize)
}

// fakeClock is a manually advanced clock.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// testConfig is a config with small segments so tests roll often.
func testConfig() Config {
	return Config{SegmentBytes: 4096, SegmentAge: time.Hour, IndexIntervalBytes: 256}
}

// testFiles is the file cache of the logs tests open without their own:
// two files shared by every test, so that sealed segments are closed and
// reopened all the time, as under a tight limit in production.
var testFiles = NewFileCache(2)

// openLog opens a log in dir on fs and closes it at cleanup (if still open).
func openLog(t testing.TB, fs FS, dir string, cfg Config, opts Options) *Log {
	t.Helper()
	opts.FS = fs
	if opts.FileCache == nil {
		opts.FileCache = testFiles
	}
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if !l.state.Load().closed {
			l.Close()
		}
	})
	return l
}

// appendN appends count batches of recordsPer records each, returning the
// batches appended.
func appendN(t testing.TB, l *Log, count, recordsPer, valueSize int) [][]byte {
	t.Helper()
	var out [][]byte
	for range count {
		b := simpleBatch(l.NextOffset(), recordsPer, valueSize)
		if err := l.Append(b); err != nil {
			t.Fatalf("Append at %d: %v", l.NextOffset(), err)
		}
		out = append(out, b)
	}
	return out
}

// readAllBatches reads the whole log batch by batch and verifies each.
func readAllBatches(t testing.TB, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	off := l.StartOffset()
	for off < l.NextOffset() {
		b, err := l.Read(nil, ReadRequest{Offset: off, MaxOffset: l.NextOffset(), MaxBytes: 1, MinOneBatch: true})
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		h, err := VerifyBatch(b)
		if err != nil {
			t.Fatalf("Read(%d) returned a bad batch: %v", off, err)
		}
		if len(b) != h.Size() {
			t.Fatalf("Read(%d) with MaxBytes 1 returned %d bytes, batch is %d", off, len(b), h.Size())
		}
		out = append(out, b)
		off = h.NextOffset()
	}
	return out
}
