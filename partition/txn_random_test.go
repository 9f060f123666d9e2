package partition

import (
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// consumeFilter decides, as a Kafka read_committed consumer does with the
// aborted transactions a fetch reported, which batches of batches it
// delivers (by base offset): a transactional batch of a producer whose
// aborted transaction has begun at or before it is dropped until that
// producer's ABORT marker; control batches never are delivered.
func consumeFilter(t testing.TB, batches []byte, aborted []AbortedTxn) map[int64]bool {
	t.Helper()
	pending := slices.Clone(aborted)
	sort.Slice(pending, func(i, j int) bool { return pending[i].FirstOffset < pending[j].FirstOffset })
	dropping := map[int64]bool{}
	keep := map[int64]bool{}
	err := log.SplitBatches(batches, func(batch []byte, h log.BatchHeader) error {
		for len(pending) > 0 && pending[0].FirstOffset <= h.LastOffset() {
			dropping[pending[0].ProducerID] = true
			pending = pending[1:]
		}
		if h.Control() {
			m, ok, err := decodeMarker(batch, &h)
			if err != nil {
				return err
			}
			if ok && !m.Commit {
				delete(dropping, h.ProducerID)
			}
			return nil
		}
		keep[h.BaseOffset] = !h.Transactional() || !dropping[h.ProducerID]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keep
}

// consumeCommitted returns the values of the records of batches (read
// from offset from) that a read_committed consumer delivers
// (consumeFilter), at or after from.
func consumeCommitted(t testing.TB, batches []byte, aborted []AbortedTxn, from int64) []string {
	t.Helper()
	keep := consumeFilter(t, batches, aborted)
	var out []string
	err := log.SplitBatches(batches, func(batch []byte, h log.BatchHeader) error {
		if !keep[h.BaseOffset] {
			return nil
		}
		_, it, err := record.Records(batch, MaxDecompressedBytes)
		if err != nil {
			return err
		}
		for it.Next() {
			if h.BaseOffset+int64(it.Record().OffsetDelta) >= from {
				out = append(out, string(it.Record().Value))
			}
		}
		return it.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testSeeds is how many random runs each randomized test makes.
var testSeeds = 20

// TestTxnRandom runs random interleavings of transactional producers,
// plain appends, commits, aborts and restarts (clean and crash) against a
// model, checking after every step the LSO and what a read_committed
// consumer sees from random offsets, in small and large reads.
func TestTxnRandom(t *testing.T) {
	for seed := range uint64(testSeeds) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			env := newEnv(t)
			r := openQuiet(t, env)
			defer func() { _ = r.Close() }()
			const producers = 4
			type rec struct {
				value    string
				producer int64 // -1 plain
				txn      int   // index of its transaction, -1 plain
			}
			var (
				records  []rec // by offset; markers hold an empty value
				sequence [producers]int32
				open     [producers]int // transaction index, -1 none
				first    [producers]int64
				outcome  = map[int]bool{} // txn -> committed
				nextTxn  int
			)
			for i := range open {
				open[i] = -1
			}
			for step := range 150 {
				switch op := rng.IntN(10); {
				case op < 5: // transactional data
					id := rng.IntN(producers)
					n := 1 + rng.IntN(3)
					tb := idem(int64(id), 0, sequence[id], n)
					tb.attributes = 0x10
					if open[id] < 0 {
						open[id], first[id] = nextTxn, int64(len(records))
						nextTxn++
					}
					for i := range tb.records {
						v := "p" + strconv.Itoa(id) + "-" + strconv.Itoa(step) + "-" + strconv.Itoa(i)
						tb.records[i].value = []byte(v)
						records = append(records, rec{v, int64(id), open[id]})
					}
					mustAppend(t, r, tb.build(t))
					sequence[id] += int32(n)
				case op < 7: // plain
					v := "plain-" + strconv.Itoa(step)
					tb := plain(1, 1000)
					tb.records[0].value = []byte(v)
					mustAppend(t, r, tb.build(t))
					records = append(records, rec{v, -1, -1})
				case op < 9: // marker
					id := rng.IntN(producers)
					commit := rng.IntN(2) == 0
					mustMarker(t, r, marker(int64(id), 0, commit))
					if open[id] >= 0 {
						outcome[open[id]] = commit
						open[id] = -1
					}
					records = append(records, rec{"", int64(id), -2})
				default: // restart
					if rng.IntN(2) == 0 {
						if err := r.Close(); err != nil {
							t.Fatal(err)
						}
					}
					r = openQuiet(t, env)
				}

				// The model's LSO: the first offset of the oldest open
				// transaction, else the log end.
				lso := int64(len(records))
				for id := range producers {
					if open[id] >= 0 {
						lso = min(lso, first[id])
					}
				}
				if o := r.Offsets(); o.LastStable != lso || o.LogEnd != int64(len(records)) {
					t.Fatalf("step %d: offsets %+v, model LSO %d, end %d", step, o, lso, len(records))
				}
				from := rng.Int64N(int64(len(records)) + 1)
				var want []string
				for o := from; o < lso; o++ {
					rc := records[o]
					if rc.txn == -2 || rc.txn >= 0 && !outcome[rc.txn] {
						continue
					}
					want = append(want, rc.value)
				}
				// Read in steps of random size, as a consumer does.
				var got []string
				for offset := from; offset < lso; {
					res, err := r.Read(nil, ReadRequest{Offset: offset, MaxBytes: 1 + rng.IntN(600), MinOneBatch: true, Isolation: ReadCommitted})
					if err != nil {
						t.Fatalf("step %d: read at %d: %v", step, offset, err)
					}
					got = append(got, consumeCommitted(t, res.Records, res.Aborted, offset)...)
					offset = batchesEnd(res.Records)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("step %d: read_committed from %d (LSO %d):\n got %q\nwant %q", step, from, lso, got, want)
				}
			}
		})
	}
}

// TestTxnCompactRandom: random transactional and plain writes to a
// compacted topic, cleaned again and again as time passes (markers past
// their horizon go), with crash restarts: a read_committed consumer always
// sees, per key, the newest committed value the model has, and the LSO is
// the model's, also after a rebuild from the compacted log.
func TestTxnCompactRandom(t *testing.T) {
	for seed := range uint64(testSeeds) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			env, clock := compactEnv(t)
			r := openQuiet(t, env)
			defer func() { _ = r.Close() }()
			const producers = 3
			// writes are every data record in log order; txn is its
			// transaction's index, -1 for a plain one.
			type write struct {
				key, value string
				txn        int
			}
			var (
				writes    []write
				sequence  [producers]int32
				open      [producers]int // transaction index, -1 none
				first     [producers]int64
				committed = map[int]bool{}
				nextTxn   int
			)
			for i := range open {
				open[i] = -1
			}
			end := int64(0)
			for step := range 200 {
				ts := clock.ms
				switch op := rng.IntN(12); {
				case op < 5:
					id := rng.IntN(producers)
					key, value := "k"+strconv.Itoa(rng.IntN(6)), "p"+strconv.Itoa(id)+"-"+strconv.Itoa(step)
					b := kvBatch(t, batchOptions{producerID: int64(id), producerEpoch: 0, sequence: sequence[id]}, kv{key: key, value: value, ts: ts})
					setTxnAttribute(b)
					mustAppend(t, r, b)
					if open[id] < 0 {
						open[id], first[id] = nextTxn, end
						nextTxn++
					}
					writes = append(writes, write{key, value, open[id]})
					sequence[id]++
				case op < 7:
					key, value := "k"+strconv.Itoa(rng.IntN(6)), "plain-"+strconv.Itoa(step)
					mustAppend(t, r, kvBatch(t, noProducer, kv{key: key, value: value, ts: ts}))
					writes = append(writes, write{key, value, -1})
				case op < 10:
					id := rng.IntN(producers)
					commit := rng.IntN(2) == 0
					mustMarker(t, r, marker(int64(id), 0, commit))
					if open[id] >= 0 {
						committed[open[id]] = commit
						open[id] = -1
					}
				case op < 11:
					clock.advance(40 * time.Minute) // DeleteRetention is an hour
					if _, err := r.Compact(context.Background(), clock.now(), CleanLimits{}); err != nil {
						t.Fatalf("step %d: compact: %v", step, err)
					}
				default: // kill -9
					r = openQuiet(t, env)
				}
				// The committed state: per key, the value of its newest
				// record in log order that is plain or committed.
				latest := map[string]string{}
				for _, w := range writes {
					if w.txn < 0 || committed[w.txn] {
						latest[w.key] = w.value
					}
				}
				end = r.Offsets().LogEnd
				lso := end
				for id := range producers {
					if open[id] >= 0 {
						lso = min(lso, first[id])
					}
				}
				if o := r.Offsets(); o.LastStable != lso {
					t.Fatalf("step %d: offsets %+v, model LSO %d", step, o, lso)
				}
				if lso != end {
					continue // committed values of keys may still change below the LSO
				}
				got := map[string]string{}
				res := readCommitted(t, r, r.Offsets().LogStart)
				for _, kvs := range consumeCommittedKV(t, res.Records, res.Aborted) {
					got[kvs[0]] = kvs[1]
				}
				if !maps.Equal(got, latest) {
					t.Fatalf("step %d: read_committed state\n got %v\nwant %v", step, got, latest)
				}
			}
		})
	}
}

// consumeCommittedKV is consumeCommitted returning [key, value] pairs.
func consumeCommittedKV(t testing.TB, batches []byte, aborted []AbortedTxn) [][2]string {
	t.Helper()
	var out [][2]string
	keep := consumeFilter(t, batches, aborted)
	err := log.SplitBatches(batches, func(batch []byte, h log.BatchHeader) error {
		if !keep[h.BaseOffset] {
			return nil
		}
		_, it, err := record.Records(batch, MaxDecompressedBytes)
		if err != nil {
			return err
		}
		for it.Next() {
			out = append(out, [2]string{string(it.Record().Key), string(it.Record().Value)})
		}
		return it.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
