package admin

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/consumergroup"
)

// BenchmarkGroupCollector scrapes 1,000 groups of 10 committed partitions
// each (10,000 group-partitions, all lagging) once per iteration: the
// steady state of a scrape, with committed offsets unchanged since the
// last one, so record timestamps come from the cache.
func BenchmarkGroupCollector(b *testing.B) {
	const groups, partitions = 1000, 10
	parts := make([]Partition, partitions)
	for i := range parts {
		parts[i] = Partition{Topic: "t", Index: int32(i), Reader: &fakePartition{hwm: 1 << 20, base: 1}}
	}
	stats := make([]consumergroup.GroupStats, groups)
	for g := range stats {
		s := consumergroup.GroupStats{ID: fmt.Sprintf("group-%04d", g), State: "Stable", Members: 3}
		for p := range partitions {
			s.Offsets = append(s.Offsets, consumergroup.CommittedOffset{Topic: "t", Partition: int32(p), Offset: int64(g)})
		}
		stats[g] = s
	}
	c := NewGroupCollector(func() []consumergroup.GroupStats { return stats }, func() []Partition { return parts }, time.Now)
	collect := func() int {
		ch := make(chan prometheus.Metric, 1024)
		done := make(chan int)
		go func() {
			n := 0
			for range ch {
				n++
			}
			done <- n
		}()
		c.Collect(ch)
		close(ch)
		return <-done
	}
	collect() // fill the timestamp cache
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if n := collect(); n < groups*partitions*3 {
			b.Fatalf("%d metrics, want at least %d", n, groups*partitions*3)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(groups*partitions), "ns/group-partition")
}
