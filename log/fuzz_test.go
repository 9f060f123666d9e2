package log

import (
	"bytes"
	"hash/crc32"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// FuzzVerifyBatch checks that VerifyBatch never panics and that success
// means a complete batch with a matching CRC; ParseBatchHeader and
// SplitBatches must agree with it.
func FuzzVerifyBatch(f *testing.F) {
	valid := simpleBatch(7, 3, 20)
	f.Add(valid)
	f.Add(valid[:BatchHeaderSize])
	f.Add(append(slices.Clone(valid), valid...))
	f.Add(makeBatch(0, []int64{5, -3, 9}, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := VerifyBatch(b)
		ph, perr := ParseBatchHeader(b)
		if err == nil {
			if perr != nil || ph != h {
				t.Fatalf("VerifyBatch accepted what ParseBatchHeader rejects: %v", perr)
			}
			if h.Size() > len(b) || h.Size() < BatchHeaderSize {
				t.Fatalf("verified batch of size %d in %d bytes", h.Size(), len(b))
			}
			if crc32.Checksum(b[batchCRCStart:h.Size()], crc32c) != h.CRC {
				t.Fatal("verified batch with a bad CRC")
			}
			if h.Magic != 2 || h.LastOffsetDelta < 0 || h.RecordCount < 0 || int64(h.RecordCount) > int64(h.LastOffsetDelta)+1 {
				t.Fatalf("verified impossible header %+v", h)
			}
		}
		n := 0
		SplitBatches(b, func(batch []byte, h BatchHeader) error {
			if len(batch) != h.Size() {
				t.Fatalf("SplitBatches gave %d bytes for a %d-byte batch", len(batch), h.Size())
			}
			n += len(batch)
			return nil
		})
		if n > len(b) {
			t.Fatalf("SplitBatches covered %d of %d bytes", n, len(b))
		}
	})
}

// FuzzDecodeIndex checks that decoded indexes satisfy the invariants the
// readers rely on, whatever the file holds.
func FuzzDecodeIndex(f *testing.F) {
	var idx, times []byte
	for i := range uint32(5) {
		idx = appendIndexEntry(idx, indexEntry{relativeOffset: i * 3, position: i * 100})
		times = appendTimeEntry(times, timeEntry{maxTimestamp: int64(i) * 10, relativeOffset: i * 3})
	}
	f.Add(idx, times, int64(1000))
	f.Add(idx[:13], times, int64(1000))
	f.Add(idx, times[:24], int64(300))
	f.Add([]byte{}, []byte{}, int64(0))
	f.Fuzz(func(t *testing.T, ib, tb []byte, logSize int64) {
		entries, err := decodeIndex(ib, logSize)
		if err != nil {
			return
		}
		if len(entries)*indexEntrySize != len(ib) {
			t.Fatalf("%d entries from %d bytes", len(entries), len(ib))
		}
		for i, e := range entries {
			if int64(e.position) >= logSize {
				t.Fatalf("entry %d position %d beyond log size %d", i, e.position, logSize)
			}
			if i > 0 && (e.relativeOffset <= entries[i-1].relativeOffset || e.position <= entries[i-1].position) {
				t.Fatalf("entry %d does not increase", i)
			}
			if !bytes.Equal(appendIndexEntry(nil, e), ib[i*indexEntrySize:(i+1)*indexEntrySize]) {
				t.Fatalf("entry %d does not round-trip", i)
			}
		}
		tes, err := decodeTimeIndex(tb, entries)
		if err != nil {
			return
		}
		for i, e := range tes {
			if e.relativeOffset != entries[i].relativeOffset || (i > 0 && e.maxTimestamp < tes[i-1].maxTimestamp) {
				t.Fatalf("time entry %d breaks the invariants", i)
			}
		}
		for rel := range uint32(20) {
			if pos, i := lookupIndex(entries, rel); i >= 0 && (entries[i].relativeOffset > rel || int64(entries[i].position) != pos) {
				t.Fatalf("lookup(%d) gave entry %d", rel, i)
			}
		}
	})
}

// FuzzRecoveryScan appends arbitrary bytes to a valid log's newest segment
// and replaces its index files, then reopens: Open must succeed, keep every
// original batch, and serve only batches that verify.
func FuzzRecoveryScan(f *testing.F) {
	f.Add([]byte("garbage"), []byte{}, false)
	f.Add(simpleBatch(30, 2, 10)[:40], []byte{0, 0, 0, 1, 0, 0, 0, 9}, true)
	f.Add(simpleBatch(30, 2, 10), []byte{0, 0, 0, 0}, false)
	f.Add(make([]byte, 100), []byte{0, 0, 0, 2, 0, 0, 1, 0x17}, true)
	cfg := Config{SegmentBytes: 1500, SegmentAge: time.Hour, IndexIntervalBytes: 150}
	f.Fuzz(func(t *testing.T, tail, index []byte, clean bool) {
		fs := NewMemFS()
		l, err := Open("/d", cfg, Options{FS: fs, FileCache: testFiles})
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for range 10 {
			b := simpleBatch(l.NextOffset(), 3, 30)
			if err := l.Append(b); err != nil {
				t.Fatal(err)
			}
			want = append(want, b)
		}
		if clean {
			l.Close()
		}
		logs := segmentFiles(t, fs, "/d", logSuffix)
		newest := logs[len(logs)-1]
		mutateFile(t, fs, newest, func(d []byte) []byte { return append(d, tail...) })
		base := newest[:len(newest)-len(logSuffix)]
		mutateFile(t, fs, base+indexSuffix, func([]byte) []byte { return index })
		l2, err := Open("/d", cfg, Options{FS: fs, FileCache: testFiles})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l2.Close()
		got := readAllBatches(t, l2) // verifies every batch
		if len(got) < len(want) || !slices.EqualFunc(got[:len(want)], want, bytes.Equal) {
			t.Fatalf("lost original batches: have %d", len(got))
		}
		_ = filepath.Base(newest)
	})
}

// FuzzRecoveryCorruption flips bits anywhere in an unsynced log (every
// segment above the recovery point) and reopens after a crash: Open must
// succeed and serve exactly the batches before the damaged one.
func FuzzRecoveryCorruption(f *testing.F) {
	f.Add(uint32(0), byte(1))
	f.Add(uint32(1000), byte(0x80))
	f.Add(uint32(2500), byte(0xff))
	cfg := Config{SegmentBytes: 1500, SegmentAge: time.Hour, IndexIntervalBytes: 150}
	f.Fuzz(func(t *testing.T, at uint32, mask byte) {
		if mask == 0 {
			return
		}
		fs := NewMemFS()
		l, err := Open("/d", cfg, Options{FS: fs, FileCache: testFiles})
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for range 12 {
			b := simpleBatch(l.NextOffset(), 3, 30)
			if err := l.Append(b); err != nil {
				t.Fatal(err)
			}
			want = append(want, b)
		}
		// Find the byte: walk the segments in order.
		pos := int(at) % len(bytes.Join(want, nil))
		damaged := -1
		for i, b := range want {
			if pos < len(b) {
				damaged = i
				break
			}
			pos -= len(b)
		}
		if pos >= offsetLeaderEpoch && pos < offsetMagic {
			return // the leader epoch: no check covers it, by design
		}
		base := want[damaged]
		h, _ := ParseBatchHeader(base)
		var target string
		for _, p := range segmentFiles(t, fs, "/d", logSuffix) {
			b, _, _ := parseSegmentName(filepath.Base(p))
			if b <= h.BaseOffset {
				target = p
			}
		}
		segBase, _, _ := parseSegmentName(filepath.Base(target))
		offsetInSegment := 0
		for _, b := range want {
			bh, _ := ParseBatchHeader(b)
			if bh.BaseOffset >= segBase && bh.BaseOffset < h.BaseOffset {
				offsetInSegment += len(b)
			}
		}
		mutateFile(t, fs, target, func(d []byte) []byte { d[offsetInSegment+pos] ^= mask; return d })

		l2, err := Open("/d", cfg, Options{FS: fs, FileCache: testFiles})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l2.Close()
		got := readAllBatches(t, l2) // verifies every batch
		if !slices.EqualFunc(got, want[:min(len(got), len(want))], bytes.Equal) {
			t.Fatalf("served batches are not a prefix of the log (damaged %d at byte %d, got %d)", damaged, pos, len(got))
		}
		// A flip inside the base offset field may still verify (the CRC
		// does not cover it) but breaks contiguity; either way the damaged
		// batch and everything after it are gone.
		if len(got) > damaged {
			t.Fatalf("damaged batch %d (byte %d) survived: have %d batches", damaged, pos, len(got))
		}
	})
}
