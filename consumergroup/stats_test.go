package consumergroup

import (
	"context"
	"testing"
	"testing/synctest"
)

func TestStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		g := h.formGroup(2)
		for _, c := range []struct {
			partition int32
			offset    int64
		}{{2, 9}, {0, 42}} {
			if r := h.commit(g.members[0], g.generation, "t1", c.partition, c.offset); r.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("commit: %+v", r)
			}
		}
		stats := h.c.Stats()
		if len(stats) != 1 {
			t.Fatalf("Stats has %d groups, want 1: %+v", len(stats), stats)
		}
		s := stats[0]
		if s.ID != testGroup || s.State != "Stable" || s.Members != 2 {
			t.Fatalf("group %+v, want %s Stable with 2 members", s, testGroup)
		}
		if len(s.Offsets) != 2 || s.Offsets[0].Partition != 0 || s.Offsets[0].Offset != 42 ||
			s.Offsets[1].Partition != 2 || s.Offsets[1].Offset != 9 || s.Offsets[0].Topic != "t1" {
			t.Fatalf("offsets %+v, want t1/0 at 42 then t1/2 at 9", s.Offsets)
		}
		if s.Offsets[0].CommitTimestamp <= 0 {
			t.Fatalf("commit timestamp %d", s.Offsets[0].CommitTimestamp)
		}
		if err := h.c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := h.c.Stats(); got != nil {
			t.Fatalf("Stats after Close = %+v, want nil", got)
		}
	})
}
