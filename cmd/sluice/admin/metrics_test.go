package admin

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/wire"
)

func TestMetricsObserver(t *testing.T) {
	m := NewMetrics("v")
	m.RequestDone(0, 3*time.Millisecond, nil)
	m.RequestDone(0, time.Millisecond, []int16{kerr.NotLeaderForPartition.Code, kerr.NotLeaderForPartition.Code})
	m.RequestDone(3, time.Millisecond, nil)
	m.Produced("t", 100, 4)
	m.Produced("t", 50, 1)
	m.Fetched("t", 150, 5)
	m.ObserveSync(log.SyncInfo{Took: time.Millisecond, Bytes: 150})
	want := `
# HELP sluice_requests_total Kafka protocol requests handled, by API.
# TYPE sluice_requests_total counter
sluice_requests_total{api="Metadata"} 1
sluice_requests_total{api="Produce"} 2
# HELP sluice_request_errors_total Error codes in responses, by API and Kafka error name; a response counts once per error it carries (per partition, group, ...).
# TYPE sluice_request_errors_total counter
sluice_request_errors_total{api="Produce",code="NOT_LEADER_FOR_PARTITION"} 2
# HELP sluice_topic_bytes_in_total Record batch bytes appended by Produce requests, by topic.
# TYPE sluice_topic_bytes_in_total counter
sluice_topic_bytes_in_total{topic="t"} 150
# HELP sluice_topic_records_in_total Records appended by Produce requests, by topic.
# TYPE sluice_topic_records_in_total counter
sluice_topic_records_in_total{topic="t"} 5
# HELP sluice_topic_records_out_total Records in the batches sent in Fetch responses, by topic (a batch starting before the fetch offset counts whole).
# TYPE sluice_topic_records_out_total counter
sluice_topic_records_out_total{topic="t"} 5
`
	names := []string{"sluice_requests_total", "sluice_request_errors_total", "sluice_topic_bytes_in_total", "sluice_topic_records_in_total", "sluice_topic_records_out_total"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.requestDuration, "sluice_request_duration_seconds"); n != 2 {
		t.Fatalf("%d request duration series, want 2 (Produce, Metadata)", n)
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestConnectionAndFlushCollectors(t *testing.T) {
	conns := NewConnectionCollector(func() wire.Stats {
		return wire.Stats{OpenConnections: 2, AcceptedConnections: 9,
			RequestMemory: wire.BudgetStats{Limit: 1 << 20, Used: 4096, Peak: 8192, Waiting: 3}}
	})
	want := `
# HELP sluice_connections_accepted_total Kafka protocol client connections accepted since start.
# TYPE sluice_connections_accepted_total counter
sluice_connections_accepted_total 9
# HELP sluice_connections_open Kafka protocol client connections open now.
# TYPE sluice_connections_open gauge
sluice_connections_open 2
# HELP sluice_request_memory_bytes Memory held by requests being read or answered and by fetch responses not yet written.
# TYPE sluice_request_memory_bytes gauge
sluice_request_memory_bytes 4096
# HELP sluice_request_memory_limit_bytes queued.max.request.bytes: the request memory budget; -1 when unbounded.
# TYPE sluice_request_memory_limit_bytes gauge
sluice_request_memory_limit_bytes 1.048576e+06
# HELP sluice_request_memory_peak_bytes Highest request memory held since start.
# TYPE sluice_request_memory_peak_bytes gauge
sluice_request_memory_peak_bytes 8192
# HELP sluice_request_memory_waiting_connections Connections not reading because the request memory budget is used up.
# TYPE sluice_request_memory_waiting_connections gauge
sluice_request_memory_waiting_connections 3
`
	if err := testutil.CollectAndCompare(conns, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	flush := NewFlushCollector(func() log.FlushStats { return log.FlushStats{Syncs: 5, Bytes: 700, Rounds: 3} })
	if n := testutil.CollectAndCount(flush); n != 3 {
		t.Fatalf("flush collector: %d metrics, want 3", n)
	}
}

func TestErrorName(t *testing.T) {
	for code, want := range map[int16]string{
		-1: "UNKNOWN_SERVER_ERROR", 3: "UNKNOWN_TOPIC_OR_PARTITION", 16: "NOT_COORDINATOR", 31000: "UNKNOWN_CODE_31000",
	} {
		if got := ErrorName(code); got != want {
			t.Errorf("ErrorName(%d) = %q, want %q", code, got, want)
		}
	}
}
