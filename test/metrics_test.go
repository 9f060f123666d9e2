package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/cmd/sluice/admin"
)

// scrape is one /metrics answer: series ("name{a="x",b="y"}", labels
// sorted by name as the text format writes them) to value.
type scrape map[string]float64

// series returns the key of name with labels given as name, value pairs.
func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	type kv struct{ k, v string }
	var kvs []kv
	for i := 0; i+1 < len(labels); i += 2 {
		kvs = append(kvs, kv{labels[i], labels[i+1]})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
	parts := make([]string, len(kvs))
	for i, p := range kvs {
		parts[i] = fmt.Sprintf("%s=%q", p.k, p.v)
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// value returns a series' value, failing the test when it is absent.
func (s scrape) value(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	key := series(name, labels...)
	v, ok := s[key]
	if !ok {
		tb.Fatalf("/metrics has no %s", key)
	}
	return v
}

// httpGet fetches url and returns the status code and body.
func httpGet(tb testing.TB, url string) (int, string) {
	tb.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// scrapeMetrics GETs /metrics and parses the text exposition format.
func scrapeMetrics(tb testing.TB, base string) scrape {
	tb.Helper()
	code, body := httpGet(tb, base+"/metrics")
	if code != http.StatusOK {
		tb.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	s := make(scrape)
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			tb.Fatalf("unparsable /metrics line %q", line)
		}
		s[line[:i]] = v
	}
	return s
}

// waitReady polls /readyz until it answers 200: only process start-up is
// awaited this way (the port is bound before the data is loaded, and
// nothing else tells the test when loading is done).
func waitReady(tb testing.TB, base string, p *sluiceProcess) {
	tb.Helper()
	deadline := time.Now().Add(testTimeout)
	backoff := 5 * time.Millisecond
	client := &http.Client{Timeout: 10 * time.Second}
	for {
		// Refused connections count as not ready yet: the listener may
		// not be bound at the instant the Kafka port first answers.
		code, body := 0, ""
		if resp, err := client.Get(base + "/readyz"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
		} else {
			body = err.Error()
		}
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("/readyz not 200 within %s: %d %s\n%s", testTimeout, code, body, p.Output())
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// TestMetricsEndToEnd runs the real process with its admin listener,
// produces, consumes in a group that commits and stops, produces more, and
// checks that /metrics counts exactly what happened and reports the
// stopped group's lag: offset lag equal to what was produced after its
// commit, time lag equal to the age of the record at its committed offset.
func TestMetricsEndToEnd(t *testing.T) {
	const (
		topic = "metrics-t"
		group = "metrics-g"
	)
	adminAddr := freeAddr(t)
	p := startProcess(t, t.TempDir(), "--admin-listen", adminAddr, "--group-initial-rebalance-delay-ms", "0")
	base := "http://" + adminAddr
	waitReady(t, base, p)
	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	createTopic(t, p.Addr, topic, 1)

	// Timestamps an hour old, one second apart: record i is at old+i s.
	old := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	producer := newClient(t, p.Addr, kgo.DefaultProduceTopic(topic))
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			// One record per request: the Produce count is exact.
			produceAll(t, producer, []*kgo.Record{{Value: []byte(fmt.Sprintf("value-%02d", i)), Timestamp: old.Add(time.Duration(i) * time.Second)}})
		}
	}
	produce(0, 10)

	consumer, err := kgo.NewClient(kgo.SeedBrokers(p.Addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	consumeAtLeast(t, consumer, 6)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var commitErr error
	consumer.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{topic: {0: {Epoch: -1, Offset: 6}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			if err == nil {
				for _, rt := range resp.Topics {
					for _, rp := range rt.Partitions {
						if rp.ErrorCode != 0 {
							commitErr = fmt.Errorf("commit %s/%d: error code %d", rt.Topic, rp.Partition, rp.ErrorCode)
						}
					}
				}
			}
		})
	if commitErr != nil {
		t.Fatal(commitErr)
	}
	consumer.Close() // leaves the group: it is Empty, its commit stays
	produce(10, 13)

	before := time.Now()
	s := scrapeMetrics(t, base)
	after := time.Now()

	exact := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sluice_requests_total", []string{"api", "Produce"}, 13},
		{"sluice_topic_records_in_total", []string{"topic", topic}, 13},
		{"sluice_partition_high_watermark", []string{"topic", topic, "partition", "0"}, 13},
		{"sluice_group_committed_offset", []string{"group", group, "topic", topic, "partition", "0"}, 6},
		{"sluice_group_offset_lag", []string{"group", group, "topic", topic, "partition", "0"}, 7},
		{"sluice_group_members", []string{"group", group}, 0},
		{"sluice_group_state", []string{"group", group, "state", "Empty"}, 1},
		{"sluice_groups", []string{"state", "Empty"}, 1},
		{"sluice_log_segments", []string{"topic", topic, "partition", "0"}, 1},
	}
	for _, e := range exact {
		if got := s.value(t, e.name, e.labels...); got != e.want {
			t.Errorf("%s = %v, want %v", series(e.name, e.labels...), got, e.want)
		}
	}
	// Batches are stored as produced: bytes in are the log's size.
	if in, size := s.value(t, "sluice_topic_bytes_in_total", "topic", topic), s.value(t, "sluice_log_size_bytes", "topic", topic, "partition", "0"); in != size || in == 0 {
		t.Errorf("bytes in %v, log size %v: want equal and non-zero", in, size)
	}
	if out := s.value(t, "sluice_topic_records_out_total", "topic", topic); out < 6 || out > 13 {
		t.Errorf("records out %v, want 6 to 13 (the consumer read at least 6 of the first 10, maybe all)", out)
	}
	if s.value(t, "sluice_topic_bytes_out_total", "topic", topic) == 0 {
		t.Error("bytes out is 0 after a consumer fetched")
	}
	for key := range s {
		if strings.HasPrefix(key, `sluice_request_errors_total{api="Produce"`) {
			t.Errorf("produce errors reported: %s = %v", key, s[key])
		}
	}
	if s.value(t, "sluice_log_sync_bytes_count") == 0 || s.value(t, "sluice_log_fsyncs_total") == 0 {
		t.Error("no log syncs reported in sync flush mode")
	}
	if s.value(t, "sluice_connections_accepted_total") < 2 {
		t.Error("fewer than 2 connections accepted after a producer and a consumer")
	}

	// Time lag: the age of record 6 (old+6s) when the scrape was taken.
	record6 := old.Add(6 * time.Second)
	lag := s.value(t, "sluice_group_time_lag_seconds", "group", group, "topic", topic, "partition", "0")
	low, high := before.Sub(record6).Seconds()-0.001, after.Sub(record6).Seconds()+0.001
	if lag < low || lag > high {
		t.Errorf("time lag %vs, want between %v and %v (age of the record at offset 6)", lag, low, high)
	}
	// A stopped group falls further behind in time, not in offsets.
	s2 := scrapeMetrics(t, base)
	if lag2 := s2.value(t, "sluice_group_time_lag_seconds", "group", group, "topic", topic, "partition", "0"); lag2 < lag {
		t.Errorf("time lag went from %v to %v: a stopped group's time lag must not shrink", lag, lag2)
	}
	if got := s2.value(t, "sluice_group_offset_lag", "group", group, "topic", topic, "partition", "0"); got != 7 {
		t.Errorf("offset lag on the second scrape %v, want 7", got)
	}

	if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if code, _ := httpGet(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without admin.pprof.enable: %d, want 404", code)
	}
	if err := p.Terminate(); err != nil {
		t.Fatalf("sluice exited with %v after SIGTERM\n%s", err, p.Output())
	}
	// The admin listener is up before the data is opened, so /readyz can
	// say "not ready" during a long recovery.
	out := p.Output()
	adminAt, openedAt := strings.Index(out, "admin listening"), strings.Index(out, "cluster open")
	if adminAt < 0 || openedAt < 0 || adminAt > openedAt {
		t.Errorf("want \"admin listening\" logged before \"cluster open\":\n%s", out)
	}
}

// gathered returns the value of one series of reg (labels as name, value
// pairs), failing when it is absent.
func gathered(tb testing.TB, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name string, labels ...string) float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	tb.Fatalf("no %s", series(name, labels...))
	return 0
}

// TestMetricsHooksInProcess wires the metrics hooks and collectors into an
// in-process server (so the race detector sees them) and has producers,
// a group consumer and scrapes run at once; the counters then match what
// was produced exactly.
func TestMetricsHooksInProcess(t *testing.T) {
	const (
		topic     = "metrics-race"
		group     = "metrics-race-group"
		producers = 3
		perWorker = 200
	)
	m := admin.NewMetrics("test")
	srv := startServer(t, withObservers(m, m.ObserveSync))
	parts := admin.ClusterPartitions(srv.Cluster)
	if err := m.Register(admin.NewLogCollector(parts), admin.NewGroupCollector(srv.Groups.Stats, parts, nil),
		admin.NewFlushCollector(srv.Cluster.FlushStats)); err != nil {
		t.Fatal(err)
	}
	createTopic(t, srv.Addr, topic, 3)

	// Scrape every few milliseconds while clients work (paced, not to
	// spin a shared CPU).
	stopScraping := make(chan struct{})
	scraped := make(chan error, 1)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopScraping:
				scraped <- nil
				return
			case <-tick.C:
			}
			if _, err := m.Registry().Gather(); err != nil {
				scraped <- err
				return
			}
		}
	}()
	consumer := newClient(t, srv.Addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	done := make(chan struct{}, producers)
	for w := range producers {
		cl := newClient(t, srv.Addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		go func() {
			defer func() { done <- struct{}{} }()
			records := make([]*kgo.Record, perWorker)
			for i := range records {
				records[i] = &kgo.Record{Value: fmt.Appendf(nil, "w%d-%d", w, i)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
			}
		}()
	}
	for range producers {
		<-done
	}
	consumeAtLeast(t, consumer, producers*perWorker)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	close(stopScraping)
	if err := <-scraped; err != nil {
		t.Fatalf("scrape: %v", err)
	}

	if got := gathered(t, m.Registry(), "sluice_topic_records_in_total", "topic", topic); got != producers*perWorker {
		t.Errorf("records in %v, want %d", got, producers*perWorker)
	}
	if got := gathered(t, m.Registry(), "sluice_topic_records_out_total", "topic", topic); got < producers*perWorker {
		t.Errorf("records out %v, want at least %d", got, producers*perWorker)
	}
	var size float64
	for p := range 3 {
		size += gathered(t, m.Registry(), "sluice_log_size_bytes", "topic", topic, "partition", strconv.Itoa(p))
		if lag := gathered(t, m.Registry(), "sluice_group_offset_lag", "group", group, "topic", topic, "partition", strconv.Itoa(p)); lag != 0 {
			t.Errorf("partition %d: offset lag %v after committing everything", p, lag)
		}
	}
	if in := gathered(t, m.Registry(), "sluice_topic_bytes_in_total", "topic", topic); in != size {
		t.Errorf("bytes in %v, log size %v: want equal", in, size)
	}
	if gathered(t, m.Registry(), "sluice_log_sync_duration_seconds") == 0 {
		t.Error("no log sync observed")
	}
}
