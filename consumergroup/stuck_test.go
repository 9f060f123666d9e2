package consumergroup

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func stuckCfg() Config {
	cfg := DefaultConfig()
	cfg.StuckRebalances, cfg.StuckTimeout = 3, time.Minute
	return cfg
}

func hwOf(m map[string]int64) HighWatermark {
	return func(topic string, partition int32) (int64, bool) {
		h, ok := m[topic]
		return h, ok && partition == 0
	}
}

func TestStuckPartitionsRules(t *testing.T) {
	now := time.UnixMilli(10_000_000)
	moved := now.Add(-30 * time.Second).UnixMilli()
	cases := []struct {
		name       string
		generation int32
		members    int
		movedGen   int32
		movedAt    int64
		hw         int64
		want       string // "" not stuck
	}{
		{"caught up despite rebalances", 10, 1, 1, moved, 5, ""},
		{"lag, few rebalances, recent", 3, 1, 1, moved, 9, ""},
		{"lag, enough rebalances", 4, 0, 1, moved, 9, StuckRebalances},
		{"lag, old offset, members", 1, 2, 1, now.Add(-2 * time.Minute).UnixMilli(), 9, StuckTimeout},
		{"lag, old offset, no members", 1, 0, 1, now.Add(-2 * time.Minute).UnixMilli(), 9, ""},
		{"both: rebalances wins", 9, 1, 1, now.Add(-2 * time.Minute).UnixMilli(), 9, StuckRebalances},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			groups := []GroupStats{{ID: "g", Members: tc.members, Generation: tc.generation, Offsets: []CommittedOffset{
				{Topic: "t", Partition: 0, Offset: 5, MovedTimestamp: tc.movedAt, MovedGeneration: tc.movedGen},
				{Topic: "unknown", Partition: 0, Offset: 0, MovedGeneration: -100},
			}}}
			got := StuckPartitions(groups, hwOf(map[string]int64{"t": tc.hw}), stuckCfg(), now)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("stuck %+v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Reason != tc.want || got[0].Offset != 5 || got[0].HighWatermark != tc.hw || got[0].Rebalances != tc.generation-tc.movedGen {
				t.Fatalf("stuck %+v, want one at offset 5 for %s", got, tc.want)
			}
		})
	}
	// Zero settings turn the tests off.
	cfg := stuckCfg()
	cfg.StuckRebalances, cfg.StuckTimeout = 0, 0
	groups := []GroupStats{{ID: "g", Members: 1, Generation: 50, Offsets: []CommittedOffset{{Topic: "t", Offset: 1, MovedTimestamp: 0}}}}
	if got := StuckPartitions(groups, hwOf(map[string]int64{"t": 9}), cfg, now); len(got) != 0 {
		t.Fatalf("stuck %+v with both tests off", got)
	}
}

func TestStuckDetectorLogsTransitions(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	gen := int32(1)
	offset := int64(5)
	groups := func() []GroupStats {
		return []GroupStats{{ID: "g", Generation: gen, Offsets: []CommittedOffset{{Topic: "t", Offset: offset, MovedGeneration: 1, MovedTimestamp: time.Now().UnixMilli()}}}}
	}
	d := NewStuckDetector(groups, hwOf(map[string]int64{"t": 9}), stuckCfg(), zap.New(core), nil)
	if r := d.Check(); len(r.Stuck) != 0 || len(r.Groups) != 1 {
		t.Fatalf("report %+v, want group g, nothing stuck", r)
	}
	gen = 4
	r := d.Check()
	if len(r.Stuck) != 1 || r.Stuck[0].Since == 0 {
		t.Fatalf("report %+v, want g stuck with a since", r)
	}
	since := r.Stuck[0].Since
	if r = d.Check(); len(r.Stuck) != 1 || r.Stuck[0].Since != since {
		t.Fatalf("second check %+v, want the same since %d", r, since)
	}
	if n := logs.FilterLevelExact(zap.WarnLevel).Len(); n != 1 {
		t.Fatalf("%d warnings, want exactly 1 for one stuck partition", n)
	}
	w := logs.FilterLevelExact(zap.WarnLevel).All()[0].ContextMap()
	if w["group"] != "g" || w["topic"] != "t" || w["partition"] != int32(0) || w["committed-offset"] != int64(5) {
		t.Fatalf("warning fields %v, want group, topic, partition and offset", w)
	}
	offset = 9 // caught up
	if r = d.Check(); len(r.Stuck) != 0 {
		t.Fatalf("report %+v after catching up, want nothing stuck", r)
	}
	if n := logs.FilterMessage("consumer group no longer stuck on a partition").Len(); n != 1 {
		t.Fatalf("%d recovery lines, want 1", n)
	}
}

func TestCommitOfSameOffsetKeepsMove(t *testing.T) {
	g := newGroup("g", time.Now())
	tp := topicPartition{"t", 0}
	g.generation = 2
	g.applyCommitLocked(tp, committed{offset: 5, commitTimestamp: 100, logOffset: 1})
	g.generation = 7
	g.applyCommitLocked(tp, committed{offset: 5, commitTimestamp: 200, logOffset: 2})
	if o := g.offsets[tp]; o.movedAt != 100 || o.movedGeneration != 2 || o.commitTimestamp != 200 {
		t.Fatalf("after re-commit %+v, want moved at 100 in generation 2", o)
	}
	g.applyCommitLocked(tp, committed{offset: 6, commitTimestamp: 300, logOffset: 3})
	if o := g.offsets[tp]; o.movedAt != 300 || o.movedGeneration != 7 {
		t.Fatalf("after a move %+v, want moved at 300 in generation 7", o)
	}
}

// TestStatsTrackOffsetMoves drives a real coordinator: an offset committed
// in one generation keeps its move generation across rebalances and
// re-commits of the same offset, so StuckPartitions finds it stuck after
// enough rebalances; a restart counts from the loaded generation.
func TestStatsTrackOffsetMoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(1)
		if r := h.commit(g.members[0], g.generation, "t1", 0, 10); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit: %+v", r)
		}
		moved := g.generation
		for range 2 { // each cycle: leave (a generation), join (another)
			h.leave(kmsg.LeaveGroupRequestMember{MemberID: g.members[0]})
			synctest.Wait()
			g = h.formGroup(1)
			if r := h.commit(g.members[0], g.generation, "t1", 0, 10); r.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("re-commit: %+v", r)
			}
		}
		stats := h.c.Stats()
		if len(stats) != 1 || len(stats[0].Offsets) != 1 {
			t.Fatalf("stats %+v, want one group with one offset", stats)
		}
		o := stats[0].Offsets[0]
		if o.MovedGeneration != moved || stats[0].Generation != moved+4 {
			t.Fatalf("moved in generation %d, group at %d; want %d and %d", o.MovedGeneration, stats[0].Generation, moved, moved+4)
		}
		hw := func(string, int32) (int64, bool) { return 20, true }
		if s := StuckPartitions(stats, hw, stuckCfg(), time.Now()); len(s) != 1 || s[0].Rebalances != 4 {
			t.Fatalf("stuck %+v, want t1/0 after 4 rebalances", s)
		}
		h.restart()
		stats = h.c.Stats()
		if len(stats) != 1 || stats[0].Offsets[0].MovedGeneration != stats[0].Generation {
			t.Fatalf("stats after restart %+v, want counting from the loaded generation", stats)
		}
		if s := StuckPartitions(stats, hw, stuckCfg(), time.Now()); len(s) != 0 {
			t.Fatalf("stuck %+v right after a restart", s)
		}
	})
}
