package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sluice-io/sluice/log"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceWorkload appends a mix of idempotent and plain batches: several
// producers, more batches than the duplicate window, an epoch bump, a
// multi-batch request and a compressed batch. It returns the request that
// was appended last, for a retry.
func produceWorkload(t *testing.T, r *Replica) (last []byte, lastResult AppendResult) {
	t.Helper()
	mustAppend(t, r, idem(1, 0, 0, 2).build(t))
	mustAppend(t, r, idem(2, 0, 0, 1).build(t))
	mustAppend(t, r, plain(3, 50).build(t))
	seq := int32(2)
	for range 7 {
		mustAppend(t, r, idem(1, 0, seq, 3).build(t))
		seq += 3
	}
	mustAppend(t, r, idem(2, 1, 0, 1).build(t))
	compressed := idem(3, 4, 0, 10)
	compressed.codec, compressed.compressed = kgo.ZstdCompression(), true
	mustAppend(t, r, compressed.build(t))
	mustAppend(t, r, concat(t, idem(2, 1, 1, 2), idem(3, 4, 10, 1), plain(1, 0)))
	last = concat(t, idem(1, 0, seq, 2))
	lastResult = mustAppend(t, r, bytes.Clone(last))
	return last, lastResult
}

func TestProducerStateSurvivesRestart(t *testing.T) {
	tests := []struct {
		name string
		// restart stops r (or not) and returns the filesystem to reopen
		// on.
		restart      func(t *testing.T, env *testEnv, r *Replica) *log.MemFS
		wantSnapshot bool
	}{
		{"clean close uses the snapshot", func(t *testing.T, env *testEnv, r *Replica) *log.MemFS {
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			return env.fs
		}, true},
		{"process crash rebuilds from the log", func(t *testing.T, env *testEnv, r *Replica) *log.MemFS {
			return env.fs // reopen without Close, as after kill -9
		}, false},
		{"power cut after sync rebuilds from the log", func(t *testing.T, env *testEnv, r *Replica) *log.MemFS {
			if err := r.log.Sync(); err != nil {
				t.Fatal(err)
			}
			return env.fs.CrashClone()
		}, false},
		{"power cut after clean close uses the snapshot", func(t *testing.T, env *testEnv, r *Replica) *log.MemFS {
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			return env.fs.CrashClone()
		}, true},
		{"crash after a snapshot was loaded rebuilds from the log", func(t *testing.T, env *testEnv, r *Replica) *log.MemFS {
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r2 := openQuiet(t, env)
			mustAppend(t, r2, idem(9, 0, 0, 1).build(t))
			r.producers.entries = maps.Clone(r2.producers.entries) // what the next open must find
			return env.fs
		}, false},
		{"corrupt snapshot is ignored", func(t *testing.T, env *testEnv, r *Replica) *log.MemFS {
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			flipByte(t, env.fs, filepath.Join(env.dir, snapshotFile), 40)
			return env.fs
		}, false},
		{"snapshot beyond the log end is ignored", func(t *testing.T, env *testEnv, r *Replica) *log.MemFS {
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			fake := &snapshot{covered: r.Offsets().LogEnd + 5, anchorBaseOffset: 1, entries: map[int64]producerEntry{42: {epoch: 1}}}
			if err := writeSnapshot(env.fs, env.dir, fake); err != nil {
				t.Fatal(err)
			}
			return env.fs
		}, false},
		{"snapshot of another log is ignored", func(t *testing.T, env *testEnv, r *Replica) *log.MemFS {
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			snap := readTestSnapshot(t, env)
			snap.anchorCRC++
			snap.entries = map[int64]producerEntry{42: {epoch: 1}}
			if err := writeSnapshot(env.fs, env.dir, snap); err != nil {
				t.Fatal(err)
			}
			return env.fs
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			r := openQuiet(t, env)
			retry, original := produceWorkload(t, r)
			logEnd := r.Offsets().LogEnd

			env.fs = tt.restart(t, env, r)
			env.opts.FS = env.fs
			want := r.producers.entries
			if len(want) == 0 {
				t.Fatal("workload left no producer state")
			}
			core, logs := observer.New(zapcore.DebugLevel)
			env.opts.Logger = zap.New(core)
			r2 := env.open(t)

			opened := logs.FilterMessage("replica opened").All()
			if len(opened) != 1 {
				t.Fatalf("%d open log lines", len(opened))
			}
			if used := opened[0].ContextMap()["producer-snapshot-used"]; used != tt.wantSnapshot {
				t.Errorf("snapshot used = %v, want %v", used, tt.wantSnapshot)
			}
			if names, _ := env.fs.ReadDir(env.dir); slices.Contains(names, snapshotFile) || slices.Contains(names, snapshotTempFile) {
				t.Errorf("snapshot still present after open: %v", names)
			}
			if !maps.Equal(r2.producers.entries, want) {
				t.Fatalf("producer state after restart:\n got %+v\nwant %+v", r2.producers.entries, want)
			}
			if r2.Offsets().HighWatermark != r2.Offsets().LogEnd {
				t.Fatalf("high watermark %+v not at log end after open", r2.Offsets())
			}

			// The last request's retry is still a duplicate.
			if r2.Offsets().LogEnd >= logEnd {
				res, err := r2.Append(retry)
				if err != nil || !res.Duplicate || res.BaseOffset != original.BaseOffset || res.LastOffset != original.LastOffset {
					t.Fatalf("retry after restart: %+v, %v; want duplicate of %+v", res, err, original)
				}
			}
		})
	}
}

// openQuiet opens env's replica without closing it at cleanup: tests that
// simulate crashes abandon it.
func openQuiet(t *testing.T, env *testEnv) *Replica {
	t.Helper()
	r, err := Open(env.dir, "t", 0, env.cfg, env.opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return r
}

func flipByte(t *testing.T, fs log.FS, path string, at int64) {
	t.Helper()
	f, err := fs.OpenFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func readTestSnapshot(t *testing.T, env *testEnv) *snapshot {
	t.Helper()
	s, err := readSnapshot(env.fs, filepath.Join(env.dir, snapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomSnapshot(rng *rand.Rand) *snapshot {
	s := &snapshot{
		covered:          rng.Int64N(1 << 40),
		anchorBaseOffset: rng.Int64N(1<<40) - 1,
		anchorCRC:        rng.Uint32(),
		entries:          map[int64]producerEntry{},
	}
	for range rng.IntN(20) {
		e := newProducerEntry(int16(rng.IntN(1 << 15)))
		e.coordinatorEpoch = rng.Int32N(100) - 1
		if rng.IntN(2) == 0 {
			e.inTxn, e.txnFirstOffset = true, rng.Int64N(1<<40)
		}
		for range rng.IntN(8) {
			e.add(batchMetadata{
				firstSequence: rng.Int32(),
				lastSequence:  rng.Int32(),
				baseOffset:    rng.Int64(),
				lastOffset:    rng.Int64(),
				timestamp:     rng.Int64(),
			})
		}
		s.entries[rng.Int64()] = e
	}
	for range rng.IntN(4) {
		s.aborted = append(s.aborted, abortedRange{rng.Int64(), rng.Int64(), rng.Int64()})
	}
	for range rng.IntN(4) {
		s.completed = append(s.completed, completedTxn{rng.Int64(), rng.Int64(), rng.Int64()})
	}
	return s
}

func TestSnapshotCodec(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		s := randomSnapshot(rng)
		b := encodeSnapshot(nil, s)
		got, err := decodeSnapshot(b)
		if err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		if got.covered != s.covered || got.anchorBaseOffset != s.anchorBaseOffset || got.anchorCRC != s.anchorCRC || !maps.Equal(got.entries, s.entries) ||
			!slices.Equal(got.aborted, s.aborted) || !slices.Equal(got.completed, s.completed) {
			t.Fatalf("snapshot %d: round trip differs", i)
		}
		if i > 3 {
			continue
		}
		// Every flipped bit and every truncation is detected.
		for at := range b {
			c := bytes.Clone(b)
			c[at] ^= 1 << (at % 8)
			if _, err := decodeSnapshot(c); err == nil {
				t.Fatalf("snapshot %d: flip at byte %d not detected", i, at)
			}
			if _, err := decodeSnapshot(b[:at]); err == nil {
				t.Fatalf("snapshot %d: truncation to %d bytes not detected", i, at)
			}
		}
	}
}

// FuzzDecodeSnapshot feeds snapshot bodies with a valid checksum appended,
// so the fuzzer exercises the parser rather than the CRC.
func FuzzDecodeSnapshot(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 4 {
		b := encodeSnapshot(nil, randomSnapshot(rng))
		f.Add(b[:len(b)-4])
	}
	b := encodeSnapshot(nil, &snapshot{anchorBaseOffset: -1})
	f.Add(b[:len(b)-4])
	v1 := encodeSnapshotV1(randomSnapshot(rng))
	f.Add(v1[:len(v1)-4])
	f.Fuzz(func(t *testing.T, body []byte) {
		b := binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, crc32c))
		s, err := decodeSnapshot(b)
		if err != nil {
			if !errors.Is(err, errSnapshotCorrupt) {
				t.Fatalf("error %v does not wrap errSnapshotCorrupt", err)
			}
			return
		}
		// Whatever decodes re-encodes to the same bytes (the format is
		// canonical; version 1 re-encodes as the current version) and
		// holds only well-formed entries.
		if again := encodeSnapshot(nil, s); b[5] == snapshotVersion && !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
		for id, e := range s.entries {
			if e.count < 0 || e.count > producerWindow {
				t.Fatalf("producer %d holds %d batches", id, e.count)
			}
		}
	})
}
