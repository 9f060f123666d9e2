package test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// BenchmarkShareFetch compares reading a topic through a share group
// (ShareFetch, every record accepted) with a classic consumer (Fetch), on
// one in-process node: 100 B records in 2 partitions, read once each way.
// Run with -benchtime=1x; SLUICE_BENCH_SCALE multiplies the records.
//
// Metrics: records/s of each reader (classic, share with 1, 4 and 16
// consumers), and each share reader's ratio to the classic consumer's
// records/s in the same run.
func BenchmarkShareFetch(b *testing.B) {
	srv := startServer(b, withLogger(zap.NewNop()))
	admin := newClient(b, srv.Addr)
	requireShareGroups(b, admin)
	n := int(benchScale(b) * 200_000)
	const topic = "bench-share"
	createTopic(b, srv.Addr, topic, 2)
	producer := newClient(b, srv.Addr, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	value := make([]byte, 100)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for i := 0; i < n; i++ {
		wg.Add(1)
		producer.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(&err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}

	var classic float64
	b.Run("classic-fetch", func(b *testing.B) {
		cl := newClient(b, srv.Addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		began := time.Now()
		for got := 0; got < n; {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				b.Fatalf("classic consumer read %d of %d", got, n)
			}
			got += fs.NumRecords()
		}
		classic = float64(n) / time.Since(began).Seconds()
		b.ReportMetric(classic, "records/s")
	})
	for _, consumers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("share-fetch-%d", consumers), func(b *testing.B) {
			group := fmt.Sprintf("bench-share-%d", consumers)
			setShareGroupConfigs(b, admin, group, map[string]string{"share.auto.offset.reset": "earliest"})
			var got atomic.Int64
			all := make(chan struct{})
			var once sync.Once
			runCtx, stop := context.WithCancel(ctx)
			var workers sync.WaitGroup
			began := time.Now()
			for range consumers {
				c := newShareConsumer(b, srv.Addr, group, []string{topic})
				workers.Add(1)
				go func() {
					defer workers.Done()
					defer c.Close()
					runShareWorker(runCtx, c, func(r *kgo.Record) {
						r.Ack(kgo.AckAccept)
						if got.Add(1) == int64(n) {
							once.Do(func() { close(all) })
						}
					})
				}()
			}
			select {
			case <-all:
			case <-ctx.Done():
				b.Fatalf("share consumers read %d of %d", got.Load(), n)
			}
			elapsed := time.Since(began)
			stop()
			workers.Wait()
			rate := float64(n) / elapsed.Seconds()
			b.ReportMetric(rate, "records/s")
			if classic > 0 {
				b.ReportMetric(rate/classic, "x-classic")
			}
		})
	}
}
