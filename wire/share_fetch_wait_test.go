package wire

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/share"
	"github.com/sluice-io/sluice/replication/configs"
)

// TestShareFetchHoldingMemberWaitsBriefly: a member whose own
// unacknowledged records fill the lock window long-polls at most
// shareHoldingWait (its client sends its acknowledgements only with its
// next request), while another member waits its whole MaxWait.
func TestShareFetchHoldingMemberWaitsBriefly(t *testing.T) {
	cfg := configs.DefaultShareGroup()
	cfg.AutoOffsetReset = "earliest"
	shareCfg := share.DefaultConfig()
	shareCfg.MaxRecordLocks = 2
	ss := startShareServerWith(t, cfg, shareCfg)
	for _, v := range []string{"a", "b", "c"} {
		ss.appendBatch(t, v)
	}
	group := "g"
	fetch := func(c *rawClient, member string, epoch, maxWaitMillis int32) (acquired int64, took time.Duration) {
		t.Helper()
		req := kmsg.NewPtrShareFetchRequest()
		req.SetVersion(2)
		req.GroupID, req.MemberID = &group, &member
		req.ShareSessionEpoch, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.MaxRecords = epoch, maxWaitMillis, 1, 1<<20, 100
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = ss.topicID
		rt.Partitions = append(rt.Partitions, kmsg.NewShareFetchRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		began := time.Now()
		resp := c.roundTrip(req).(*kmsg.ShareFetchResponse)
		took = time.Since(began)
		if resp.ErrorCode != 0 {
			t.Fatalf("share fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				for _, r := range rp.AcquiredRecords {
					acquired += r.LastOffset - r.FirstOffset + 1
				}
			}
		}
		return acquired, took
	}
	m1, m2 := dial(t, ss.addr), dial(t, ss.addr)
	if n, _ := fetch(m1, "m1", 0, 5000); n != 2 {
		t.Fatalf("m1 acquired %d records, want the 2 the lock window holds", n)
	}
	// m1 holds the whole window: its wait is short, not 5 s.
	if n, took := fetch(m1, "m1", 1, 5000); n != 0 || took > 2*time.Second {
		t.Fatalf("m1, holding the full window, acquired %d after %s; want nothing after at most %s", n, took, shareHoldingWait)
	}
	// m2 holds nothing: its acknowledgements cannot free room, so it
	// waits its whole MaxWait.
	if n, took := fetch(m2, "m2", 0, 300); n != 0 || took < 250*time.Millisecond {
		t.Fatalf("m2 acquired %d after %s; want nothing after its 300 ms MaxWait", n, took)
	}
}
