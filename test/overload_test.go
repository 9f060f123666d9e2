package test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition/record"
)

// overload is one flood: producers writing acks=1 as fast as the broker
// takes it, one consumer tailing, and a fresh client asking for Metadata
// every 200 ms.
type overload struct {
	producers  int
	partitions int32
	duration   time.Duration
	// brokerArgs are extra `sluice serve` arguments (the budget).
	brokerArgs []string
}

// overloadResult is what a flood measured.
type overloadResult struct {
	acked, bytes     int64
	peakRSS          int64 // VmHWM of the broker
	budgetPeak       float64
	slowestMetadata  time.Duration
	metadataFailures int
	consumed         int64
	elapsed          time.Duration
	recoveredIn      time.Duration
}

// ackedBatch is where an acknowledged flood batch landed.
type ackedBatch struct {
	partition int32
	base      int64
}

// floodBatchRecords is the record count of each flood batch.
const floodBatchRecords = 1024

// floodRequest returns a Produce v7 request (acks=1) with one batch of
// floodBatchRecords 1000-byte records for each partition of "flood", and
// the checksum of each record's value by its index in the batch.
func floodRequest(partitions int32) (*kmsg.ProduceRequest, []uint32) {
	var b record.Builder
	sums := make([]uint32, floodBatchRecords)
	for i := range floodBatchRecords {
		v := make([]byte, 1000)
		binary.BigEndian.PutUint32(v, uint32(i))
		b.Add(int64(1_700_000_000_000+i), nil, v)
		sums[i] = crc32.ChecksumIEEE(v)
	}
	batch, err := b.AppendTo(nil)
	if err != nil {
		panic(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 7, 1, 30_000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "flood"
	for part := range partitions {
		pr := kmsg.NewProduceRequestTopicPartition()
		pr.Partition, pr.Records = part, batch
		t.Partitions = append(t.Partitions, pr)
	}
	req.Topics = append(req.Topics, t)
	return req, sums
}

// readResponseFrame reads one size-prefixed response frame.
func readResponseFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("response size %d out of range", n)
	}
	body := make([]byte, n)
	_, err := io.ReadFull(r, body)
	return body, err
}

// run floods a fresh single-node broker and checks, once the flood stops,
// that every acknowledged record is in the log at its offset.
func (o overload) run(tb testing.TB) overloadResult {
	tb.Helper()
	adminAddr := freeAddr(tb)
	args := append([]string{"--admin-listen", adminAddr}, o.brokerArgs...)
	p := startProcess(tb, onDiskTempDir(tb), args...)
	base := "http://" + adminAddr
	waitReady(tb, base, p)

	adm := kadm.NewClient(newClient(tb, p.Addr))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, o.partitions, 1, nil, "flood"); err != nil {
		tb.Fatal(err)
	}

	var (
		res   overloadResult
		mu    sync.Mutex
		acked []ackedBatch
		wg    sync.WaitGroup
	)
	floodCtx, stopFlood := context.WithTimeout(context.Background(), o.duration)
	defer stopFlood()

	// Producers: raw connections pipelining one prebuilt acks=1 request
	// (a batch of floodBatchRecords for every partition) as fast as the
	// socket takes it, never waiting for a response: what a careless
	// client fleet with deep pipelines sends, at little client CPU.
	req, sums := floodRequest(o.partitions)
	for range o.producers {
		conn, err := net.DialTimeout("tcp", p.Addr, testTimeout)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { conn.Close() })
		sent := make(chan struct{}, 1<<16)
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(sent)
			formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("flood"))
			var frame []byte
			for id := int32(1); floodCtx.Err() == nil; id++ {
				frame = formatter.AppendRequest(frame[:0], req, id)
				// The write blocks while the broker does not read: that
				// is the back pressure. Writes do not stop midway through
				// a frame, so the stream stays whole.
				if _, err := conn.Write(frame); err != nil {
					tb.Errorf("flood write: %v", err)
					return
				}
				sent <- struct{}{}
			}
		}()
		go func() {
			defer wg.Done()
			// Every request sent is answered, also after the flood.
			conn.SetReadDeadline(time.Now().Add(o.duration + time.Minute))
			for range sent {
				body, err := readResponseFrame(conn)
				if err != nil {
					tb.Errorf("flood response: %v", err)
					return
				}
				resp := req.ResponseKind().(*kmsg.ProduceResponse)
				resp.SetVersion(req.Version)
				if err := resp.ReadFrom(body[4:]); err != nil {
					tb.Errorf("flood response: %v", err)
					return
				}
				mu.Lock()
				for _, t := range resp.Topics {
					for _, pr := range t.Partitions {
						if pr.ErrorCode != 0 {
							continue // not acknowledged
						}
						acked = append(acked, ackedBatch{pr.Partition, pr.BaseOffset})
					}
				}
				mu.Unlock()
			}
		}()
	}

	// One consumer tails the topic throughout.
	wg.Add(1)
	go func() {
		defer wg.Done()
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr), kgo.ConsumeTopics("flood"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			tb.Error(err)
			return
		}
		defer cl.Close()
		for floodCtx.Err() == nil {
			fs := cl.PollFetches(floodCtx)
			res.consumed += int64(fs.NumRecords())
		}
	}()

	// A fresh client's Metadata, every 200 ms, must answer within 1 s.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-floodCtx.Done():
				return
			case <-tick.C:
			}
			start := time.Now()
			cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr))
			if err == nil {
				mctx, mcancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err = cl.Request(mctx, kmsg.NewPtrMetadataRequest())
				mcancel()
				cl.Close()
			}
			took := time.Since(start)
			mu.Lock()
			res.slowestMetadata = max(res.slowestMetadata, took)
			if err != nil || took > time.Second {
				res.metadataFailures++
			}
			mu.Unlock()
		}
	}()

	start := time.Now()
	wg.Wait()
	res.elapsed = time.Since(start)
	res.peakRSS = processPeakRSS(tb, p.cmd.Process.Pid)
	res.budgetPeak = scrapeMetrics(tb, base).value(tb, "sluice_request_memory_peak_bytes")

	// It recovers: a fresh producer's acks=all write is answered at once.
	rec := time.Now()
	cl := newClient(tb, p.Addr, kgo.DefaultProduceTopic("flood"))
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		tb.Fatalf("produce after the flood: %v", err)
	}
	res.recoveredIn = time.Since(rec)

	// Every acknowledged record is in the log at its offset.
	res.acked = int64(len(acked)) * floodBatchRecords
	res.bytes = res.acked * 1000
	lctx, lcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer lcancel()
	offsets, err := adm.ListEndOffsets(lctx, "flood")
	if err != nil {
		tb.Fatalf("end offsets after the flood: %v", err)
	}
	stored := checksumsUpTo(tb, p.Addr, "flood", offsets)
	for _, a := range acked {
		got := stored[a.partition]
		for i, sum := range sums {
			if g, ok := got[a.base+int64(i)]; !ok || g != sum {
				tb.Fatalf("partition %d: acknowledged record at offset %d is missing or different (present %v)", a.partition, a.base+int64(i), ok)
			}
		}
	}
	return res
}

// TestOverloadIsSlowedNotSunk floods a broker with a small request memory
// budget: producers are slowed down, memory stays bounded, nothing
// acknowledged is lost, a fresh client is answered within a second
// throughout, and the broker serves normally when the flood stops.
// BenchmarkOverload runs it for a minute against the unbounded baseline.
func TestOverloadIsSlowedNotSunk(t *testing.T) {
	const budget = 16 << 20
	res := overload{
		producers: 10, partitions: 8, duration: overloadDuration(),
		brokerArgs: []string{"--queued-max-request-bytes", strconv.Itoa(budget), "--socket-request-max-bytes", strconv.Itoa(16 << 20)},
	}.run(t)
	t.Logf("acked %d records (%.0f MB/s), consumed %d, budget peak %.0f MiB, broker peak RSS %.0f MiB, slowest Metadata %s, recovered in %s",
		res.acked, float64(res.bytes)/res.elapsed.Seconds()/1e6, res.consumed, res.budgetPeak/(1<<20), float64(res.peakRSS)/(1<<20), res.slowestMetadata, res.recoveredIn)
	if res.acked == 0 || res.consumed == 0 {
		t.Fatalf("the flood acknowledged %d and consumed %d records", res.acked, res.consumed)
	}
	if res.metadataFailures > 0 {
		t.Errorf("%d Metadata requests of a fresh client failed or took over 1s (slowest %s)", res.metadataFailures, res.slowestMetadata)
	}
	// The budget's own bound: limit + socket.request.max.bytes + the
	// small-frame reserve.
	if bound := float64(budget + 16<<20 + 8<<20); res.budgetPeak > bound {
		t.Errorf("request memory peaked at %.0f bytes, above the bound %.0f", res.budgetPeak, bound)
	}
	if res.recoveredIn > 5*time.Second {
		t.Errorf("a produce after the flood took %s", res.recoveredIn)
	}
}

// BenchmarkOverload floods for a minute with the default budget and
// without one (-1), and reports peak broker memory of each and their
// ratio: what the budget saves.
func BenchmarkOverload(b *testing.B) {
	var rss [2]int64
	for i, limit := range []string{"268435456", "-1"} {
		// A sub-benchmark each, so the first flood's data is removed
		// before the second writes its own.
		b.Run("queued.max.request.bytes="+limit, func(b *testing.B) {
			res := overload{producers: 10, partitions: 8, duration: time.Minute,
				brokerArgs: []string{"--queued-max-request-bytes", limit}}.run(b)
			rss[i] = res.peakRSS
			b.ReportMetric(float64(res.bytes)/res.elapsed.Seconds()/1e6, "MB/s-acked")
			b.ReportMetric(float64(res.peakRSS)/(1<<20), "rss-MiB-peak")
			b.ReportMetric(res.budgetPeak/(1<<20), "budget-MiB-peak")
			b.ReportMetric(float64(res.slowestMetadata.Milliseconds()), "ms-slowest-metadata")
			b.Logf("%.0f MB/s acked, %d records consumed meanwhile, budget peak %.0f MiB, peak RSS %.0f MiB, slowest fresh Metadata %s (%d over 1s)",
				float64(res.bytes)/res.elapsed.Seconds()/1e6, res.consumed, res.budgetPeak/(1<<20), float64(res.peakRSS)/(1<<20), res.slowestMetadata, res.metadataFailures)
		})
	}
	if rss[0] > 0 && rss[1] > 0 {
		b.Logf("peak RSS bounded/unbounded: %.2f (%.0f / %.0f MiB)", float64(rss[0])/float64(rss[1]), float64(rss[0])/(1<<20), float64(rss[1])/(1<<20))
	}
}

// processPeakRSS returns the peak resident set size (VmHWM) of pid.
func processPeakRSS(tb testing.TB, pid int) int64 {
	tb.Helper()
	return procStatusBytes(tb, pid, "VmHWM:")
}

// procStatusBytes returns a "kB" field of /proc/pid/status in bytes.
func procStatusBytes(tb testing.TB, pid int, field string) int64 {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatalf("/proc/%d/status %s %q: %v", pid, field, rest, err)
			}
			return kib << 10
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// checksumsUpTo reads every partition of topic up to its end offset and
// returns each record's value checksum by partition and offset.
func checksumsUpTo(tb testing.TB, addr, topic string, ends kadm.ListedOffsets) map[int32]map[int64]uint32 {
	tb.Helper()
	parts := map[int32]kgo.Offset{}
	remaining := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			parts[o.Partition] = kgo.NewOffset().AtStart()
			remaining++
		}
	})
	got := map[int32]map[int64]uint32{}
	if remaining == 0 {
		return got
	}
	cl := newClient(tb, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.FetchMaxBytes(64<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			tb.Fatalf("reading %s back: %v with %d partitions unread", topic, err, remaining)
		}
		fs.EachRecord(func(r *kgo.Record) {
			m := got[r.Partition]
			if m == nil {
				m = map[int64]uint32{}
				got[r.Partition] = m
			}
			m[r.Offset] = crc32.ChecksumIEEE(r.Value)
			if end, _ := ends.Lookup(topic, r.Partition); r.Offset == end.Offset-1 {
				remaining--
			}
		})
	}
	return got
}

// overloadDuration is 4 s, or SLUICE_OVERLOAD_SECONDS.
func overloadDuration() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("SLUICE_OVERLOAD_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 4 * time.Second
}
