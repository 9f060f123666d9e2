package test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// throttleHook records the longest throttle a client was told of.
type throttleHook struct{ longest atomic.Int64 }

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	for {
		old := h.longest.Load()
		if int64(d) <= old || h.longest.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// produceFor produces 1 KiB records as fast as the client is let for d
// and returns the bytes acknowledged. Quotas count the bytes on the wire,
// so the client must not compress (its batches are what is measured).
func produceFor(tb testing.TB, cl *kgo.Client, topic string, d time.Duration) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var acked atomic.Int64
	value := make([]byte, 1024)
	for ctx.Err() == nil {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(r *kgo.Record, err error) {
			if err == nil {
				acked.Add(int64(len(r.Value)))
			}
		})
	}
	cl.Flush(context.Background())
	return acked.Load()
}

// TestClientQuotas sets quotas with kadm (AlterClientQuotas), reads them
// back (DescribeClientQuotas), and checks a producer held to its
// producer_byte_rate over 20 s runs within 20 % of it with throttle times
// in its responses, while a client without a quota runs at full speed;
// and a consumer held to consumer_byte_rate, over 8 s while that producer
// runs.
func TestClientQuotas(t *testing.T) {
	adminAddr := freeAddr(t)
	p := startProcess(t, t.TempDir(), "--admin-listen", adminAddr)
	base := "http://" + adminAddr
	waitReady(t, base, p)
	adm := kadm.NewClient(newClient(t, p.Addr))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "quota"); err != nil {
		t.Fatal(err)
	}

	const rate = 1 << 20 // bytes per second
	slow, reader := "slow-producer", "slow-reader"
	altered, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &slow}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &reader}}, Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: rate}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "no_such_quota", Value: 1}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "ip"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range altered {
		wantErr := i >= 2
		if (a.Err != nil) != wantErr || (wantErr && !errors.Is(a.Err, kerr.InvalidRequest)) {
			t.Errorf("entity %s: err %v (%s), want error %v", a.Entity, a.Err, a.ErrMessage, wantErr)
		}
	}
	described, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchType: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(described) != 2 {
		t.Fatalf("described %+v, want the two client-id quotas", described)
	}

	// Without a quota the client runs at full speed.
	fastBytes := produceFor(t, newClient(t, p.Addr, kgo.ClientID("fast"), kgo.ProducerBatchCompression(kgo.NoCompression())), "quota", 2*time.Second)
	fastRate := float64(fastBytes) / 2
	if fastRate < 3*rate {
		t.Fatalf("a client without a quota produced %.0f B/s, not above 3x the quota of others", fastRate)
	}

	// A consumer held to consumer_byte_rate reads at about its quota. It
	// reads what the fast client wrote (over 6 MiB, more than 8 s at the
	// quota) while the producer below runs: the two quotas are measured
	// and enforced apart (client ids of their own, a connection each) and
	// neither rate needs much CPU.
	readHook := &throttleHook{}
	rd := newClient(t, p.Addr, kgo.ClientID(reader), kgo.WithHooks(readHook),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"quota": {0: kgo.NewOffset().AtStart()}}))
	var readRate float64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		rctx, rcancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer rcancel()
		start := time.Now()
		var read int64
		for rctx.Err() == nil {
			fs := rd.PollFetches(rctx)
			if fs.IsClientClosed() { // the test failed and cleaned up
				return
			}
			fs.EachRecord(func(r *kgo.Record) { read += int64(len(r.Value)) })
		}
		readRate = float64(read) / time.Since(start).Seconds()
	}()

	hook := &throttleHook{}
	slowCl := newClient(t, p.Addr, kgo.ClientID(slow), kgo.WithHooks(hook), kgo.ProducerBatchCompression(kgo.NoCompression()),
		// A small buffer: what is buffered at the end drains at the quota.
		kgo.MaxBufferedRecords(256))
	start := time.Now()
	slowBytes := produceFor(t, slowCl, "quota", 20*time.Second)
	slowRate := float64(slowBytes) / time.Since(start).Seconds()
	t.Logf("without a quota %.1f MiB/s; with producer_byte_rate=%d, %.2f MiB/s over 20 s, longest throttle %s",
		fastRate/(1<<20), rate, slowRate/(1<<20), time.Duration(hook.longest.Load()))
	if slowRate < 0.8*rate || slowRate > 1.2*rate {
		t.Errorf("producer held to %d B/s achieved %.0f B/s over 20 s, not within 20%%", rate, slowRate)
	}
	if hook.longest.Load() == 0 {
		t.Error("no produce response carried a throttle time")
	}

	<-readDone // long done: it ran 8 s of the producer's 20
	t.Logf("consumer with consumer_byte_rate=%d read %.2f MiB/s, longest throttle %s", rate, readRate/(1<<20), time.Duration(readHook.longest.Load()))
	if readRate > 1.5*rate || readRate < 0.5*rate {
		t.Errorf("consumer held to %d B/s read %.0f B/s over 8 s", rate, readRate)
	}
	if readHook.longest.Load() == 0 {
		t.Error("no fetch response carried a throttle time")
	}
	if v := scrapeMetrics(t, base).value(t, "sluice_quota_throttled_responses_total", "quota", "produce"); v == 0 {
		t.Error("sluice_quota_throttled_responses_total{quota=produce} did not move")
	}
}
