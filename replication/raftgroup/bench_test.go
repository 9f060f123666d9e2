package raftgroup

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/partition/record"
)

// BenchmarkProduce compares acks=all produce to one partition through
// its Raft group with today's single-node path, in one run:
//
//   - replica: partition.Replica.Append then WaitCommitted, durable with a
//     group-commit Flusher (the path before Raft);
//   - raft-1: a one-replica Raft group (a one-node cluster);
//   - raft-3-inmem, raft-3-tcp: three replicas in this process, over the
//     in-memory transport or replication/transport on 127.0.0.1, sharing
//     the disk and the two cores.
//
// Eight appenders each send batches of 16 records of 1 KiB, as pipelined
// producers do. Metrics: MB/s of record batches acknowledged, and
// disk-bytes/byte, the bytes the process wrote to storage per byte
// acknowledged per replica (/proc/self/io). b.N is the number of batches.
func BenchmarkProduce(b *testing.B) {
	bld := record.Builder{}
	for i := range 16 {
		bld.Add(1_700_000_000_000+int64(i), nil, make([]byte, 1024))
	}
	batch, err := bld.AppendTo(nil)
	if err != nil {
		b.Fatal(err)
	}
	const appenders = 8
	run := func(b *testing.B, replicas int, appendOne func(context.Context, []byte) error) {
		b.SetBytes(int64(len(batch)))
		written := diskWrites()
		b.ResetTimer()
		var wg sync.WaitGroup
		errs := make(chan error, appenders)
		for w := range appenders {
			n := b.N / appenders
			if w < b.N%appenders {
				n++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				own := append([]byte(nil), batch...)
				for range n {
					if err := appendOne(context.Background(), own); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		if w := diskWrites(); w >= 0 && written >= 0 {
			b.ReportMetric(float64(w-written)/float64(b.N*len(batch)*replicas), "disk-bytes/byte")
		}
	}

	b.Run("replica", func(b *testing.B) {
		flusher := log.NewFlusher(log.FlushConfig{}, nil)
		defer flusher.Close(context.Background())
		r, err := partition.Open(b.TempDir(), "bench", 0, partition.DefaultConfig(), partition.Options{Durable: true, Flusher: flusher})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		var mu sync.Mutex // Append in request order, as a connection does
		run(b, 1, func(ctx context.Context, batch []byte) error {
			mu.Lock()
			res, err := r.Append(batch)
			mu.Unlock()
			if err != nil {
				return err
			}
			return r.WaitCommitted(ctx, res.LastOffset)
		})
	})
	for _, tc := range []struct {
		name string
		n    int
		tcp  bool
	}{{"raft-1", 1, false}, {"raft-3-inmem", 3, false}, {"raft-3-tcp", 3, true}} {
		n := tc.n
		b.Run(tc.name, func(b *testing.B) {
			c := newClusterOf(b, n, DefaultConfig(), tc.tcp)
			leader := c.leader() // the election is not part of the figure
			run(b, n, func(ctx context.Context, batch []byte) error {
				_, err := leader.group.Append(ctx, batch)
				return err
			})
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
