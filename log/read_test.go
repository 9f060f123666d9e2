package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// tsModel is the brute-force model of the log's timestamps.
type tsModel struct {
	batches [][]byte
	headers []BatchHeader
}

func (m *tsModel) find(ts int64) ([]byte, bool) {
	for i, h := range m.headers {
		if h.MaxTimestamp >= ts {
			return m.batches[i], true
		}
	}
	return nil, false
}

func (m *tsModel) max() (int64, []byte, bool) {
	best := -1
	for i, h := range m.headers {
		if best < 0 || h.MaxTimestamp > m.headers[best].MaxTimestamp {
			best = i
		}
	}
	if best < 0 {
		return 0, nil, false
	}
	return m.headers[best].MaxTimestamp, m.batches[best], true
}

func TestTimestamps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batches int
		spread  int64 // timestamps wander within ±spread
		cfg     Config
	}{
		{"increasing", 150, 0, testConfig()},
		{"jittered", 150, 50, testConfig()},
		{"random", 150, 100000, testConfig()},
		{"every batch indexed", 100, 30, Config{SegmentBytes: 3000, SegmentAge: time.Hour, IndexIntervalBytes: 0}},
		{"unindexed", 100, 30, Config{SegmentBytes: 1 << 20, SegmentAge: time.Hour, IndexIntervalBytes: 1 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.batches)))
			fs := NewMemFS()
			l := openLog(t, fs, "/d", tc.cfg, Options{})
			m := &tsModel{}
			for i := range tc.batches {
				n := 1 + rng.IntN(4)
				ts := make([]int64, n)
				for j := range ts {
					ts[j] = int64(i*10+j) + 1000
					if tc.spread > 0 {
						ts[j] += rng.Int64N(2*tc.spread) - tc.spread
					}
				}
				b := makeBatch(l.NextOffset(), ts, rng.IntN(80))
				if err := l.Append(b); err != nil {
					t.Fatal(err)
				}
				h, _ := ParseBatchHeader(b)
				m.batches, m.headers = append(m.batches, b), append(m.headers, h)
			}
			check := func(l *Log) {
				t.Helper()
				lo, hi := m.headers[0].MaxTimestamp-tc.spread-5, m.headers[len(m.headers)-1].MaxTimestamp+tc.spread+5
				for ts := lo; ts <= hi; ts += max(1, (hi-lo)/500) {
					want, wantFound := m.find(ts)
					got, found, err := l.FindTimestamp([]byte("p"), ts)
					if err != nil || found != wantFound || !bytes.Equal(got[1:], want) || got[0] != 'p' {
						t.Fatalf("FindTimestamp(%d) = %d bytes, %v, %v; want %d bytes, %v", ts, len(got), found, err, len(want), wantFound)
					}
				}
				wantTS, want, _ := m.max()
				ts, got, found, err := l.MaxTimestamp(nil)
				if err != nil || !found || ts != wantTS || !bytes.Equal(got, want) {
					t.Fatalf("MaxTimestamp = %d, %d bytes, %v, %v; want %d", ts, len(got), found, err, wantTS)
				}
			}
			check(l)
			l.Close()
			check(openLog(t, fs, "/d", tc.cfg, Options{}))
			check(openLog(t, fs.CrashClone(), "/d", tc.cfg, Options{}))
		})
	}
}

func TestBatchHeaders(t *testing.T) {
	l := openLog(t, NewMemFS(), "/d", testConfig(), Options{})
	batches := appendN(t, l, 80, 3, 60)
	for _, tc := range []struct {
		name  string
		from  int64
		limit int
		want  []int
	}{
		{"all", 0, 1000, seq(0, 80)},
		{"below start", -5, 1000, seq(0, 80)},
		{"mid batch", 31, 1000, seq(10, 80)},
		{"batch start", 30, 1000, seq(10, 80)},
		{"stop early", 3, 5, seq(1, 6)},
		{"last", 239, 1000, []int{79}},
		{"end", 240, 1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			err := l.BatchHeaders(tc.from, func(h BatchHeader) bool {
				want, _ := ParseBatchHeader(batches[h.BaseOffset/3])
				if h != want {
					t.Fatalf("header at %d differs", h.BaseOffset)
				}
				got = append(got, int(h.BaseOffset/3))
				return len(got) < tc.limit
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) || (len(got) > 0 && (got[0] != tc.want[0] || got[len(got)-1] != tc.want[len(tc.want)-1])) {
				t.Fatalf("got batches %v, want %v", got, tc.want)
			}
		})
	}
}

// TestConcurrentReaders runs readers against a writer that appends, rolls
// and truncates; under -race it checks the snapshot and reference counting.
func TestConcurrentReaders(t *testing.T) {
	l := openLog(t, NewMemFS(), "/d", Config{SegmentBytes: 2048, SegmentAge: time.Hour, IndexIntervalBytes: 128}, Options{})
	appendN(t, l, 20, 2, 50)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			var buf []byte
			for {
				select {
				case <-stop:
					return
				default:
				}
				start, next := l.StartOffset(), l.NextOffset()
				off := start + rng.Int64N(next-start+1)
				var err error
				buf, err = l.Read(buf[:0], ReadRequest{Offset: off, MaxOffset: next, MaxBytes: 4096, MinOneBatch: true})
				if err != nil {
					// The writer truncated below off since we looked.
					continue
				}
				for len(buf) > 0 {
					h, err := VerifyBatch(buf)
					if err != nil {
						t.Errorf("read a bad batch at %d: %v", off, err)
						return
					}
					buf = buf[h.Size():]
				}
				l.FindTimestamp(nil, rng.Int64N(5000))
				l.MaxTimestamp(nil)
				l.BatchHeaders(off, func(BatchHeader) bool { return rng.IntN(10) > 0 })
			}
		})
	}
	for i := range 300 {
		appendN(t, l, 1, 2, 50)
		if i%50 == 49 {
			if err := l.TruncateTo(l.NextOffset() - 40); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReadModel compares Read against a brute-force model on random
// requests over batches of random sizes.
func TestReadModel(t *testing.T) {
	for _, cfg := range []Config{
		testConfig(),
		{SegmentBytes: 1 << 20, SegmentAge: time.Hour, IndexIntervalBytes: 0},
		{SegmentBytes: 700, SegmentAge: time.Hour, IndexIntervalBytes: 1 << 20},
	} {
		t.Run(fmt.Sprintf("segment-%d-interval-%d", cfg.SegmentBytes, cfg.IndexIntervalBytes), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, uint64(cfg.SegmentBytes)))
			l := openLog(t, NewMemFS(), "/d", cfg, Options{})
			var batches [][]byte
			var headers []BatchHeader
			for range 150 {
				b := simpleBatch(l.NextOffset(), 1+rng.IntN(5), rng.IntN(300))
				if err := l.Append(b); err != nil {
					t.Fatal(err)
				}
				h, _ := ParseBatchHeader(b)
				batches, headers = append(batches, b), append(headers, h)
			}
			next := l.NextOffset()
			model := func(r ReadRequest) []byte {
				var out []byte
				remaining := r.MaxBytes
				for i, h := range headers {
					if h.LastOffset() < r.Offset {
						continue
					}
					if h.LastOffset() >= r.MaxOffset || (h.Size() > remaining && !(len(out) == 0 && r.MinOneBatch)) {
						break
					}
					out = append(out, batches[i]...)
					remaining -= h.Size()
				}
				return out
			}
			for range 3000 {
				r := ReadRequest{
					Offset:      rng.Int64N(next + 1),
					MaxOffset:   rng.Int64N(next + 10),
					MaxBytes:    rng.IntN(3000) - 10,
					MinOneBatch: rng.IntN(2) == 0,
				}
				if rng.IntN(4) == 0 {
					r.MaxOffset = next
				}
				// Half the reads go into memory the caller lends, dirty
				// and sometimes larger than asked.
				var lent [][]byte
				if rng.IntN(2) == 0 {
					r.Buffer = func(size int) []byte {
						b := bytes.Repeat([]byte{0xee}, size+rng.IntN(10))
						lent = append(lent, b)
						return b[:0]
					}
				}
				got, err := l.Read(nil, r)
				if err != nil {
					t.Fatalf("Read(%+v): %v", r, err)
				}
				if want := model(r); !bytes.Equal(got, want) {
					t.Fatalf("Read(%+v) = %d bytes, model %d", r, len(got), len(want))
				}
				if r.Buffer != nil && len(got) > 0 && (len(lent) == 0 || &got[0] != &lent[len(lent)-1][0]) {
					t.Fatalf("Read(%+v) did not read into the lent buffer", r)
				}
			}
		})
	}
}

// TestReadersDuringDelete closes the log under running readers: each must
// end with ErrClosed, never a panic or a read of a closed file.
func TestReadersDuringDelete(t *testing.T) {
	for _, del := range []bool{false, true} {
		t.Run(fmt.Sprintf("delete=%v", del), func(t *testing.T) {
			l := openLog(t, NewMemFS(), "/d", Config{SegmentBytes: 1024, SegmentAge: time.Hour, IndexIntervalBytes: 100}, Options{})
			appendN(t, l, 50, 2, 50)
			started := make(chan struct{}, 4)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					started <- struct{}{}
					for i := int64(0); ; i = (i + 7) % 100 {
						_, err := l.Read(nil, ReadRequest{Offset: i, MaxOffset: 100, MaxBytes: 2048})
						_, _, ferr := l.FindTimestamp(nil, i*10)
						herr := l.BatchHeaders(i, func(BatchHeader) bool { return true })
						if errors.Is(err, ErrClosed) && errors.Is(ferr, ErrClosed) && errors.Is(herr, ErrClosed) {
							return
						}
						for _, e := range []error{err, ferr, herr} {
							if e != nil && !errors.Is(e, ErrClosed) {
								t.Errorf("reader error %v", e)
								return
							}
						}
					}
				})
			}
			for range 4 {
				<-started
			}
			appendN(t, l, 10, 2, 50)
			var err error
			if del {
				err = l.Delete()
			} else {
				err = l.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			wg.Wait()
		})
	}
}

// willNeedFS records the WillNeed hints Read gives its files.
type willNeedFS struct {
	FS
	mu    sync.Mutex
	hints [][2]int64 // offset, length
}

func (fs *willNeedFS) OpenFile(path string, create bool) (File, error) {
	f, err := fs.FS.OpenFile(path, create)
	if err != nil {
		return nil, err
	}
	return &willNeedFile{File: f, fs: fs}, nil
}

type willNeedFile struct {
	File
	fs *willNeedFS
}

func (f *willNeedFile) WillNeed(off, n int64) {
	f.fs.mu.Lock()
	f.fs.hints = append(f.fs.hints, [2]int64{off, n})
	f.fs.mu.Unlock()
}

// TestReadHintsWhatFollows checks that a read stopped by its byte limit
// asks the file to fetch what a sequential reader wants next, and that a
// read to the end of the segment does not.
func TestReadHintsWhatFollows(t *testing.T) {
	fs := &willNeedFS{FS: NewMemFS()}
	l := openLog(t, fs, "/d", Config{SegmentBytes: 1 << 20, SegmentAge: time.Hour, IndexIntervalBytes: 256}, Options{})
	size := 0
	for range 20 {
		b := simpleBatch(l.NextOffset(), 2, 100)
		if err := l.Append(b); err != nil {
			t.Fatal(err)
		}
		size += len(b)
	}
	if _, err := l.Read(nil, ReadRequest{Offset: 0, MaxOffset: l.NextOffset(), MaxBytes: 1000}); err != nil {
		t.Fatal(err)
	}
	want := [2]int64{1000, 1000}
	if len(fs.hints) != 1 || fs.hints[0] != want {
		t.Fatalf("hints %v after a limited read, want [%v]", fs.hints, want)
	}
	fs.hints = nil
	if _, err := l.Read(nil, ReadRequest{Offset: 0, MaxOffset: l.NextOffset(), MaxBytes: 2 * size}); err != nil {
		t.Fatal(err)
	}
	if len(fs.hints) != 0 {
		t.Fatalf("hints %v after reading to the end", fs.hints)
	}
}
