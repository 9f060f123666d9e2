package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-io/sluice/consumergroup"
)

func stuckReport() consumergroup.StuckReport {
	return consumergroup.StuckReport{
		Groups: []string{"a", "b"},
		Stuck: []consumergroup.StuckPartition{
			{Group: "b", Topic: "t", Partition: 0, Offset: 4, HighWatermark: 9, Reason: consumergroup.StuckRebalances},
			{Group: "b", Topic: "t", Partition: 1, Offset: 2, HighWatermark: 3, Reason: consumergroup.StuckTimeout},
		},
	}
}

func TestStuckCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewStuckCollector(stuckReport))
	want := `
# HELP sluice_group_stuck_partitions Partitions the consumer group is stuck on: committed offset unmoved, with lag, across group.stuck.rebalances rebalances or for group.stuck.timeout.ms with members.
# TYPE sluice_group_stuck_partitions gauge
sluice_group_stuck_partitions{group="a"} 0
sluice_group_stuck_partitions{group="b"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_group_stuck_partitions"); err != nil {
		t.Fatal(err)
	}
}

func TestStuckHandler(t *testing.T) {
	h := StuckHandler(stuckReport)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, StuckPath, nil))
	var got consumergroup.StuckReport
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("status %d, body %q: %v", rec.Code, rec.Body, err)
	}
	if len(got.Stuck) != 2 || got.Stuck[0].Reason != "rebalances" || got.Stuck[0].Offset != 4 || got.Stuck[0].HighWatermark != 9 {
		t.Fatalf("decoded %+v, want the report back", got)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, StuckPath, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST answered %d, want 405", rec.Code)
	}
}
