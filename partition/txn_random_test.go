package partition

import (
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// consumeCommitted filters batches (read from offset from) as a Kafka
// read_committed consumer does with the aborted transactions a fetch
// reported: a transactional batch of a producer whose aborted
// transaction has begun at or before it is dropped until that producer's
// ABORT marker; control batches are never returned. It returns the values
// of the records kept at or after from.
func consumeCommitted(t testing.TB, batches []byte, aborted []AbortedTxn, from int64) []string {
	t.Helper()
	pending := slices.Clone(aborted)
	sort.Slice(pending, func(i, j int) bool { return pending[i].FirstOffset < pending[j].FirstOffset })
	dropping := map[int64]bool{}
	var out []string
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
		if h.Transactional() && dropping[h.ProducerID] {
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

// TestTxnRandom runs random interleavings of transactional producers,
// plain appends, commits, aborts and restarts (clean and crash) against a
// model, checking after every step the LSO and what a read_committed
// consumer sees from random offsets, in small and large reads.
func TestTxnRandom(t *testing.T) {
	for seed := range uint64(20) {
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
