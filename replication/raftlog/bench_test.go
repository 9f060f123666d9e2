package raftlog

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/sluice-io/sluice/log"
)

// BenchmarkStoreLogs compares the ways a partition's Raft log can live,
// storing calls of 8 entries of 16 KiB batches (16 records of 1 KiB)
// with one fsync per call, as a leader's group commit does:
//
//   - segments: this package, each batch written once, to the segment log;
//   - boltdb+segments: raft-boltdb as the Raft log, then the batch copied
//     to the segment log when applied (synced by the group commit too).
//
// Read the MB/s of the two side by side (the ratio is the decision's
// figure) and disk-bytes/byte, the bytes the process wrote to storage per
// byte stored (/proc/self/io); b.N is the number of StoreLogs calls.
func BenchmarkStoreLogs(b *testing.B) {
	const perCall = 8
	batch := testBatch(16, string(make([]byte, 1000)))
	for _, kind := range []string{"segments", "boltdb+segments"} {
		b.Run(kind, func(b *testing.B) {
			dir := b.TempDir()
			cfg := log.DefaultConfig()
			l, err := log.Open(dir, cfg, log.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			var store raft.LogStore
			switch kind {
			case "segments":
				s, err := Open(dir, l, Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				store = s
			default:
				bs, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer bs.Close()
				store = bs
			}
			b.SetBytes(int64(perCall * len(batch)))
			written := diskWrites()
			b.ResetTimer()
			index := uint64(1)
			entries := make([]*raft.Log, perCall)
			copyBuf := make([]byte, 0, perCall*len(batch))
			for range b.N {
				for i := range entries {
					entries[i] = &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: batch}
					index++
				}
				if err := store.StoreLogs(entries); err != nil {
					b.Fatal(err)
				}
				if kind == "segments" {
					continue
				}
				// Apply: the batches to the segment log, synced.
				copyBuf = copyBuf[:0]
				offset := l.NextOffset()
				for range entries {
					start := len(copyBuf)
					copyBuf = append(copyBuf, batch...)
					log.SetBaseOffset(copyBuf[start:], offset)
					offset += 16
				}
				if err := l.Append(copyBuf); err != nil {
					b.Fatal(err)
				}
				if err := l.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if w := diskWrites(); w >= 0 && written >= 0 {
				b.ReportMetric(float64(w-written)/float64(b.N*perCall*len(batch)), "disk-bytes/byte")
			}
		})
	}
}

// diskWrites returns the bytes this process has caused to be written to
// storage (write_bytes of /proc/self/io), or -1 where that is unknown.
func diskWrites() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}
