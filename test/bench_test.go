package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// BenchmarkSluice measures one in-process node on a real disk, driven by a
// franz-go producer over TCP with acks=all: produce throughput and latency
// for 1 KiB and 100 B records into 6 partitions, the same disk's raw
// fdatasync bandwidth at the flush size the server achieved, and replay of
// everything from offset 0. Each case moves a fixed amount of data, so run
// it with -benchtime=1x (make bench); SLUICE_BENCH_SCALE (default 1)
// multiplies the amounts.
//
// Metrics: MB/s and records/s of record payload (key + value);
// p50-ms/p99-ms from each Produce call to its promise (under saturation,
// with kgo's default buffer of 10k records, so mostly queueing); flush-KiB, the bytes
// one fdatasync made durable on average (cluster FlushStats); raw-MB/s, this
// disk's bandwidth when appending flush-KiB and fdatasync-ing, in a loop;
// vs-raw, sluice's flushed bytes per second over raw-MB/s.
func BenchmarkSluice(b *testing.B) {
	scale := benchScale(b)
	dir := onDiskTempDir(b)
	srv := startServer(b, withDataDir(filepath.Join(dir, "data")), withLogger(zap.NewNop()))
	const partitions = 6
	var summary []benchResult

	for _, tc := range []struct {
		name      string
		valueSize int
		records   int
	}{
		{"produce-1KiB", 1024, int(scale * (4 << 20))}, // 4 GiB
		{"produce-100B", 100, int(scale * (8 << 20))},  // 8 Mi records, 800 MiB
	} {
		topic := tc.name
		createTopic(b, srv.Addr, topic, partitions)
		b.Run(tc.name, func(b *testing.B) {
			r := benchProduce(b, srv, topic, tc.valueSize, tc.records*b.N)
			r.name = tc.name
			r.rawMBps = rawSyncBandwidth(b, dir, int(r.flushBytes), 5*time.Second)
			b.ReportMetric(r.mbps(), "MB/s")
			b.ReportMetric(float64(r.records)/r.elapsed.Seconds(), "records/s")
			b.ReportMetric(ms(r.p50), "p50-ms")
			b.ReportMetric(ms(r.p99), "p99-ms")
			b.ReportMetric(r.flushBytes/1024, "flush-KiB")
			b.ReportMetric(r.rawMBps, "raw-MB/s")
			b.ReportMetric(r.flushedMBps()/r.rawMBps, "vs-raw")
			summary = append(summary, r)
		})

		b.Run("replay-"+strings.TrimPrefix(tc.name, "produce-"), func(b *testing.B) {
			r := benchReplay(b, srv, topic, tc.records)
			r.name = "replay-" + strings.TrimPrefix(tc.name, "produce-")
			b.ReportMetric(r.mbps(), "MB/s")
			b.ReportMetric(float64(r.records)/r.elapsed.Seconds(), "records/s")
			summary = append(summary, r)
		})
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "case\trecords\tMB/s\trecords/s\tp50 ms\tp99 ms\tflush KiB\tflushed MB/s\traw MB/s\tvs raw\t")
	for _, r := range summary {
		if r.flushBytes == 0 {
			fmt.Fprintf(w, "%s\t%d\t%.1f\t%.0f\t\t\t\t\t\t\t\n", r.name, r.records, r.mbps(), float64(r.records)/r.elapsed.Seconds())
			continue
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.0f\t%.2f\t%.2f\t%.0f\t%.1f\t%.1f\t%.2f\t\n", r.name, r.records, r.mbps(),
			float64(r.records)/r.elapsed.Seconds(), ms(r.p50), ms(r.p99), r.flushBytes/1024, r.flushedMBps(), r.rawMBps, r.flushedMBps()/r.rawMBps)
	}
	w.Flush()
}

// benchResult is one case's measurements.
type benchResult struct {
	name         string
	records      int
	payloadBytes int64
	elapsed      time.Duration
	p50, p99     time.Duration
	// flushBytes is the average bytes per fdatasync and flushedBytes the
	// total bytes the server synced during the case.
	flushBytes   float64
	flushedBytes int64
	rawMBps      float64
}

func (r benchResult) mbps() float64 { return float64(r.payloadBytes) / 1e6 / r.elapsed.Seconds() }

func (r benchResult) flushedMBps() float64 {
	return float64(r.flushedBytes) / 1e6 / r.elapsed.Seconds()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchProduce produces n records of valueSize random bytes (keyless, so
// kgo's sticky partitioner fills one partition's batch at a time) with
// acks=all and idempotence, and measures each record's latency.
func benchProduce(b *testing.B, srv *testServer, topic string, valueSize, n int) benchResult {
	producer := newClient(b, srv.Addr,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), // measure the disk, not the codec
	)
	// A pool of random values, so nothing compresses and little is allocated.
	rng := rand.New(rand.NewPCG(1, 2))
	values := make([][]byte, 64)
	for i := range values {
		values[i] = make([]byte, valueSize)
		for j := range values[i] {
			values[i][j] = byte(rng.Uint32())
		}
	}
	latencies := make([]time.Duration, n)
	var failed atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	before := srv.flushStats()
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		record := &kgo.Record{Value: values[i%len(values)]}
		sent := time.Now()
		producer.Produce(ctx, record, func(_ *kgo.Record, err error) {
			latencies[i] = time.Since(sent)
			if err != nil && failed.Add(1) == 1 {
				firstErr.Store(err)
			}
		})
	}
	if err := producer.Flush(ctx); err != nil {
		b.Fatalf("flush: %v", err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	after := srv.flushStats()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d records failed; first: %v", n, firstErr.Load())
	}

	slices.Sort(latencies)
	r := benchResult{
		records:      n,
		payloadBytes: int64(n) * int64(valueSize),
		elapsed:      elapsed,
		p50:          latencies[n/2],
		p99:          latencies[n*99/100],
		flushedBytes: after.Bytes - before.Bytes,
	}
	if syncs := after.Syncs - before.Syncs; syncs > 0 {
		r.flushBytes = float64(r.flushedBytes) / float64(syncs)
	}
	return r
}

// benchReplay consumes n records of topic from offset 0.
func benchReplay(b *testing.B, srv *testServer, topic string, n int) benchResult {
	consumer := newClient(b, srv.Addr,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(8<<20),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	var records int
	var bytes int64
	for records < n {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Fatalf("replayed %d of %d records: %v", records, n, err)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			b.Fatalf("fetch %s/%d: %v", topic, partition, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			records++
			bytes += int64(len(r.Key) + len(r.Value))
		})
	}
	elapsed := time.Since(start)
	b.StopTimer()
	return benchResult{records: records, payloadBytes: bytes, elapsed: elapsed}
}

// flushStats returns the in-process cluster's flush counters; zero for a
// broker in another process, which the benchmarks know only by address.
func (s *testServer) flushStats() log.FlushStats {
	if s.Cluster == nil {
		return log.FlushStats{}
	}
	return s.Cluster.FlushStats()
}

// rawSyncBandwidth appends chunks of flushSize bytes to a file in dir,
// fdatasync-ing after each, for about d, and returns MB/s: what this disk
// gives a single writer that syncs as often as sluice did.
func rawSyncBandwidth(b *testing.B, dir string, flushSize int, d time.Duration) float64 {
	b.Helper()
	if flushSize <= 0 {
		flushSize = 4096
	}
	path := filepath.Join(dir, "raw-fdatasync")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()
	chunk := make([]byte, flushSize)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	var written int64
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
		if err := fdatasync(f); err != nil {
			b.Fatal(err)
		}
		written += int64(flushSize)
	}
	return float64(written) / 1e6 / time.Since(start).Seconds()
}
