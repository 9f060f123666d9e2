package test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// BenchmarkTransactions measures what transactions cost on one `sluice
// serve` process (on a real disk, sync flush mode), as ratios of one run:
//
//   - produce: a transactional franz-go producer committing every 100 ms
//     against the idempotent producer, both acks=all, 1 KiB records into
//     6 partitions (txn/idem); the transactional one at transaction
//     version 2 (KIP-890 part 2, as franz-go negotiates it) and at version
//     1 (EndTxn capped at v4, so franz-go does not opt in) (v1/v2);
//   - replay: the transactional topic read from offset 0 with
//     isolation.level read_committed against read_uncommitted (rc/ru),
//     alternating three rounds of each and keeping each one's median.
//
// It fails, saying why, when the broker does not commit a transaction.
// SLUICE_BENCH_SCALE multiplies the amount of data (default 128 Mi of
// records per producer).
func BenchmarkTransactions(b *testing.B) {
	scale := benchScale(b)
	dir := onDiskTempDir(b)
	p := startProcess(b, filepath.Join(dir, "data"))
	requireTransactions(b, p.Addr)
	const partitions, valueSize = 6, 1024
	records := int(scale * (128 << 10))
	createTopic(b, p.Addr, "bench-idempotent", partitions)
	createTopic(b, p.Addr, "bench-transactional", partitions)
	createTopic(b, p.Addr, "bench-transactional-v1", partitions)
	probeTransactions(b, p.Addr)

	var idem, txn, txnV1, committed, uncommitted benchResult
	b.Run("produce-idempotent", func(b *testing.B) {
		idem = benchTxnProduce(b, p.Addr, "bench-idempotent", valueSize, records*b.N, 0)
		b.ReportMetric(idem.mbps(), "MB/s")
	})
	b.Run("produce-transactional-100ms", func(b *testing.B) {
		txn = benchTxnProduce(b, p.Addr, "bench-transactional", valueSize, records*b.N, 100*time.Millisecond)
		b.ReportMetric(txn.mbps(), "MB/s")
		b.ReportMetric(txn.mbps()/idem.mbps(), "txn/idem")
	})
	b.Run("produce-transactional-100ms-version1", func(b *testing.B) {
		v1 := kversion.Stable()
		v1.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
		txnV1 = benchTxnProduce(b, p.Addr, "bench-transactional-v1", valueSize, records*b.N, 100*time.Millisecond, kgo.MaxVersions(v1))
		b.ReportMetric(txnV1.mbps(), "MB/s")
		b.ReportMetric(txnV1.mbps()/txn.mbps(), "v1/v2")
	})
	// Alternate the two isolation levels, so neither alone reads from a
	// cold page cache, and keep each one's median round.
	b.Run("replay-committed-vs-uncommitted", func(b *testing.B) {
		var rounds [2][]benchResult
		for range 3 {
			for i, level := range []kgo.IsolationLevel{kgo.ReadUncommitted(), kgo.ReadCommitted()} {
				rounds[i] = append(rounds[i], benchIsolatedReplay(b, p.Addr, "bench-transactional", txn.records, level))
			}
		}
		uncommitted, committed = medianRound(rounds[0]), medianRound(rounds[1])
		b.ReportMetric(uncommitted.mbps(), "ru-MB/s")
		b.ReportMetric(committed.mbps(), "rc-MB/s")
		b.ReportMetric(committed.mbps()/uncommitted.mbps(), "rc/ru")
	})

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "case\trecords\tMB/s\trecords/s\tratio\t")
	for _, row := range []struct {
		r     benchResult
		name  string
		ratio float64
	}{
		{idem, "produce idempotent", 1},
		{txn, "produce transactional, commit/100ms", txn.mbps() / idem.mbps()},
		{txnV1, "  same at transaction version 1 (vs 2)", txnV1.mbps() / txn.mbps()},
		{uncommitted, "replay read_uncommitted", 1},
		{committed, "replay read_committed", committed.mbps() / uncommitted.mbps()},
	} {
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.0f\t%.2f\t\n", row.name, row.r.records, row.r.mbps(), float64(row.r.records)/row.r.elapsed.Seconds(), row.ratio)
	}
	w.Flush()
}

// probeTransactions fails the benchmark when a transaction cannot be
// committed (the broker answers transactions with an error).
func probeTransactions(b *testing.B, addr string) {
	b.Helper()
	cl := newClient(b, addr, kgo.TransactionalID("bench-probe"), kgo.DefaultProduceTopic("bench-transactional"))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := cl.BeginTransaction()
	if err == nil {
		err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("probe")}).FirstErr()
	}
	if err == nil {
		err = cl.EndTransaction(ctx, kgo.TryCommit)
	}
	if err != nil {
		b.Fatalf("the broker does not commit a transaction: %v", err)
	}
}

// benchTxnProduce produces n records of valueSize random bytes with
// acks=all: idempotent when commitEvery is 0, else in transactions each
// committed once it has been open commitEvery (flush, then EndTransaction,
// as a transactional application does).
func benchTxnProduce(b *testing.B, addr, topic string, valueSize, n int, commitEvery time.Duration, extra ...kgo.Opt) benchResult {
	opts := append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression())}, extra...)
	if commitEvery > 0 {
		opts = append(opts, kgo.TransactionalID("bench-"+topic))
	}
	producer := newClient(b, addr, opts...)
	rng := rand.New(rand.NewPCG(3, 4))
	values := make([][]byte, 64)
	for i := range values {
		values[i] = make([]byte, valueSize)
		for j := range values[i] {
			values[i][j] = byte(rng.UintN(256))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// failed is the first error, from this goroutine or the produce
	// callbacks.
	var mu sync.Mutex
	var failed error
	record := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && failed == nil {
			failed = err
		}
	}
	failure := func() error {
		mu.Lock()
		defer mu.Unlock()
		return failed
	}
	commit := func() {
		record(producer.Flush(ctx))
		record(producer.EndTransaction(ctx, kgo.TryCommit))
	}
	// Warm up the client and the partitions (connections, producer id,
	// first segments) outside the timing: a tenth of the records, at most
	// 2000, in one transaction for the transactional producer.
	if commitEvery > 0 {
		record(producer.BeginTransaction())
	}
	for i := range min(n/10, 2000) {
		producer.Produce(ctx, &kgo.Record{Value: values[i%len(values)]}, func(_ *kgo.Record, err error) { record(err) })
	}
	if commitEvery > 0 {
		commit()
	} else {
		record(producer.Flush(ctx))
	}
	b.ResetTimer()
	start := time.Now()
	opened := start
	if commitEvery > 0 {
		record(producer.BeginTransaction())
	}
	for i := 0; i < n && failure() == nil; i++ {
		producer.Produce(ctx, &kgo.Record{Value: values[i%len(values)]}, func(_ *kgo.Record, err error) { record(err) })
		if commitEvery > 0 && time.Since(opened) >= commitEvery {
			commit()
			opened = time.Now()
			record(producer.BeginTransaction())
		}
	}
	if commitEvery > 0 {
		commit()
	} else {
		record(producer.Flush(ctx))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failure(); err != nil {
		b.Fatalf("produce to %s: %v", topic, err)
	}
	return benchResult{records: n, payloadBytes: int64(n) * int64(valueSize), elapsed: elapsed}
}

// medianRound returns the round of median throughput.
func medianRound(rounds []benchResult) benchResult {
	sorted := slices.Clone(rounds)
	slices.SortFunc(sorted, func(a, b benchResult) int { return cmp.Compare(a.mbps(), b.mbps()) })
	return sorted[len(sorted)/2]
}

// benchIsolatedReplay reads topic from offset 0 at the isolation level
// until it has n records (without the probe's), timing only that.
func benchIsolatedReplay(b *testing.B, addr, topic string, n int, level kgo.IsolationLevel) benchResult {
	consumer := newClient(b, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(level), kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	var records int
	var bytes int64
	for records < n {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Fatalf("replay %s: %d of %d records: %v", topic, records, n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "probe" {
				return
			}
			records++
			bytes += int64(len(r.Key) + len(r.Value))
		})
	}
	return benchResult{records: records, payloadBytes: bytes, elapsed: time.Since(start)}
}
