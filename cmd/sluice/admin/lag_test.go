package admin

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition"
)

// fakePartition has offsets 0 up to hwm, record i stamped base+1000*i ms.
type fakePartition struct {
	mu      sync.Mutex
	hwm     int64
	base    int64
	lookups int // TimestampAt calls
	stats   log.Stats
}

func (p *fakePartition) LocalOffsets() (partition.Offsets, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return partition.Offsets{HighWatermark: p.hwm, LastStable: p.hwm, LogEnd: p.hwm}, true
}

func (p *fakePartition) LogStats() log.Stats { return p.stats }

func (p *fakePartition) TimestampAt(offset int64) (int64, int64, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lookups++
	if offset >= p.hwm {
		return -1, -1, false, nil
	}
	return offset, p.base + 1000*offset, true, nil
}

func TestGroupCollectorLag(t *testing.T) {
	const nowMs = 1_700_000_100_000
	p0 := &fakePartition{hwm: 10, base: nowMs - 60_000} // record 4 is 56 s old
	p1 := &fakePartition{hwm: 3, base: nowMs - 5_000}
	parts := func() []Partition {
		return []Partition{{Topic: "t", Index: 0, Reader: p0}, {Topic: "t", Index: 1, Reader: p1}}
	}
	groups := []consumergroup.GroupStats{
		{ID: "g", State: "Stable", Members: 2, Offsets: []consumergroup.CommittedOffset{
			{Topic: "t", Partition: 0, Offset: 4},
			{Topic: "t", Partition: 1, Offset: 3},    // caught up
			{Topic: "gone", Partition: 0, Offset: 1}, // deleted topic: skipped
		}},
		{ID: "h", State: "Empty", Offsets: []consumergroup.CommittedOffset{{Topic: "t", Partition: 0, Offset: 4}}},
	}
	var mu sync.Mutex
	c := NewGroupCollector(func() []consumergroup.GroupStats {
		mu.Lock()
		defer mu.Unlock()
		return groups
	}, parts, func() time.Time { return time.UnixMilli(nowMs) })

	want := `
# HELP sluice_group_offset_lag Records the group has yet to consume: the partition's high watermark minus the committed offset (0 when caught up).
# TYPE sluice_group_offset_lag gauge
sluice_group_offset_lag{group="g",partition="0",topic="t"} 6
sluice_group_offset_lag{group="g",partition="1",topic="t"} 0
sluice_group_offset_lag{group="h",partition="0",topic="t"} 6
# HELP sluice_group_time_lag_seconds Age of the record at the group's committed offset (0 when caught up): how far behind in time the group is.
# TYPE sluice_group_time_lag_seconds gauge
sluice_group_time_lag_seconds{group="g",partition="0",topic="t"} 56
sluice_group_time_lag_seconds{group="g",partition="1",topic="t"} 0
sluice_group_time_lag_seconds{group="h",partition="0",topic="t"} 56
# HELP sluice_group_members Members of the consumer group.
# TYPE sluice_group_members gauge
sluice_group_members{group="g"} 2
sluice_group_members{group="h"} 0
# HELP sluice_groups Consumer groups this node coordinates, by state.
# TYPE sluice_groups gauge
sluice_groups{state="CompletingRebalance"} 0
sluice_groups{state="Empty"} 1
sluice_groups{state="PreparingRebalance"} 0
sluice_groups{state="Stable"} 1
# HELP sluice_group_state 1 for the group's current state (Empty, PreparingRebalance, CompletingRebalance, Stable).
# TYPE sluice_group_state gauge
sluice_group_state{group="g",state="Stable"} 1
sluice_group_state{group="h",state="Empty"} 1
`
	names := []string{"sluice_group_offset_lag", "sluice_group_time_lag_seconds", "sluice_group_members", "sluice_groups", "sluice_group_state"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// Two groups at one offset, two scrapes: one lookup.
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if p0.lookups != 1 || p1.lookups != 0 {
		t.Fatalf("TimestampAt calls: %d on t/0, %d on t/1; want 1 and 0 (cached, and none when caught up)", p0.lookups, p1.lookups)
	}
	// The groups move on: the old offset leaves the cache.
	mu.Lock()
	groups = []consumergroup.GroupStats{{ID: "g", State: "Stable", Members: 1, Offsets: []consumergroup.CommittedOffset{{Topic: "t", Partition: 0, Offset: 9}}}}
	mu.Unlock()
	if n := testutil.CollectAndCount(c, "sluice_group_time_lag_seconds"); n != 1 {
		t.Fatalf("%d time lag series, want 1", n)
	}
	if _, ok := c.timestamps[offsetKey{"t", 0, 4}]; ok || len(c.timestamps) != 1 {
		t.Fatalf("cache %v, want only t/0 at offset 9", c.timestamps)
	}
}

func TestLogCollector(t *testing.T) {
	p := &fakePartition{hwm: 7, stats: log.Stats{Bytes: 4096, Segments: 3}}
	c := NewLogCollector(func() []Partition { return []Partition{{Topic: "t", Index: 2, Reader: p}} })
	want := `
# HELP sluice_log_segments Segments of the partition's log on this node, the active one included.
# TYPE sluice_log_segments gauge
sluice_log_segments{partition="2",topic="t"} 3
# HELP sluice_log_size_bytes Bytes of the partition's segment .log files on this node (indexes not included).
# TYPE sluice_log_size_bytes gauge
sluice_log_size_bytes{partition="2",topic="t"} 4096
# HELP sluice_partition_high_watermark The partition's high watermark: the offset after the last committed record.
# TYPE sluice_partition_high_watermark gauge
sluice_partition_high_watermark{partition="2",topic="t"} 7
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "sluice_log_segments", "sluice_log_size_bytes", "sluice_partition_high_watermark"); err != nil {
		t.Fatal(err)
	}
}

// TestCollectorsLint runs Prometheus' metric linter over every collector.
func TestCollectorsLint(t *testing.T) {
	p := &fakePartition{hwm: 1}
	parts := func() []Partition { return []Partition{{Topic: "t", Reader: p}} }
	for name, c := range map[string]prometheus.Collector{
		"groups": NewGroupCollector(func() []consumergroup.GroupStats {
			return []consumergroup.GroupStats{{ID: "g", State: "Empty", Offsets: []consumergroup.CommittedOffset{{Topic: "t", Offset: 0}}}}
		}, parts, nil),
		"logs": NewLogCollector(parts),
	} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s: %s", name, p.Metric, p.Text)
		}
	}
}
