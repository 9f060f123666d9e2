package admin

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/wire"
)

// exportedNames returns every metric name a fully wired Metrics exposes,
// histogram and summary series (_bucket, _sum, _count) included: each hook
// is exercised once and every collector sees one partition and one
// lagging group, so that every family has a sample.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	m := NewMetrics("test")
	m.RequestDone(0, time.Millisecond, []int16{kerr.NotLeaderForPartition.Code})
	m.Produced("t", 10, 1)
	m.Fetched("t", 10, 1)
	m.ObserveSync(log.SyncInfo{Took: time.Millisecond, Bytes: 10})
	p := &fakePartition{hwm: 5, base: 1}
	parts := func() []Partition { return []Partition{{Topic: "t", Reader: p}} }
	err := m.Register(
		NewLogCollector(parts),
		NewGroupCollector(func() []consumergroup.GroupStats {
			return []consumergroup.GroupStats{{ID: "g", State: "Stable", Members: 1, Offsets: []consumergroup.CommittedOffset{{Topic: "t", Offset: 1}}}}
		}, parts, nil),
		NewStuckCollector(func() consumergroup.StuckReport { return consumergroup.StuckReport{Groups: []string{"g"}} }),
		NewConnectionCollector(func() wire.Stats { return wire.Stats{} }),
		NewQuotaCollector(func() wire.Stats { return wire.Stats{} }),
		NewFlushCollector(func() log.FlushStats { return log.FlushStats{} }),
	)
	if err != nil {
		t.Fatal(err)
	}
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := make(map[string]bool)
	for _, f := range families {
		names[f.GetName()] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[f.GetName()+"_bucket"] = true
			fallthrough
		case dto.MetricType_SUMMARY:
			names[f.GetName()+"_sum"] = true
			names[f.GetName()+"_count"] = true
		}
	}
	return names
}

// dashboardQueries returns every PromQL string of the dashboard: panel
// targets' expr and template variables' query and definition.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("dashboard.json is not JSON: %v", err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if s, ok := child.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					out = append(out, s)
					continue
				}
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(doc)
	return out
}

// metricName matches a metric name of ours or of the Go and process
// collectors; anything that merely looks like one (a typo of the prefix)
// is caught by the check that each panel query names at least one.
var metricName = regexp.MustCompile(`\b(?:sluice|go|process)_[a-zA-Z0-9_]+\b`)

// TestDashboardNamesExportedMetrics fails when dashboard.json queries a
// metric that Sluice does not export.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	exported := exportedNames(t)
	queries := dashboardQueries(t)
	if len(queries) < 20 {
		t.Fatalf("found %d queries in dashboard.json; the walk is broken", len(queries))
	}
	used := make(map[string]bool)
	for _, q := range queries {
		if q == "prometheus" { // the datasource variable's plugin type
			continue
		}
		names := metricName.FindAllString(q, -1)
		if len(names) == 0 {
			t.Errorf("query names no Sluice, Go or process metric: %s", q)
		}
		for _, n := range names {
			used[n] = true
			if !exported[n] {
				t.Errorf("dashboard.json uses %s, which Sluice does not export (query: %s)", n, q)
			}
		}
	}
	// Every Sluice metric is on the dashboard, or knowingly left off.
	var missing []string
	for n := range exported {
		if len(n) > 7 && n[:7] == "sluice_" && !used[n] && !used[n+"_bucket"] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	for _, n := range missing {
		switch n {
		case "sluice_request_duration_seconds", "sluice_log_sync_duration_seconds", "sluice_log_sync_bytes",
			"sluice_log_sync_duration_seconds_count", "sluice_log_sync_duration_seconds_sum",
			"sluice_log_sync_bytes_bucket", "sluice_group_committed_offset":
			// families behind their series, and series the panels do not need
		default:
			t.Errorf("%s is exported but on no dashboard panel", n)
		}
	}
}
