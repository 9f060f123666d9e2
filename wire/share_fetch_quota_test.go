package wire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication/configs"
)

// TestShareFetchChargesConsumerQuota: a ShareFetch's records count
// against consumer_byte_rate; over it the response still carries the
// records it acquired (withheld, they would stay locked from everyone)
// and says how long the client is throttled.
func TestShareFetchChargesConsumerQuota(t *testing.T) {
	cfg := configs.DefaultShareGroup()
	cfg.AutoOffsetReset = "earliest"
	ss := startShareServer(t, cfg)
	for _, v := range []string{"a", "b", "c"} {
		ss.appendBatch(t, v)
	}
	c := dial(t, ss.addr)
	fetch := func(member string) *kmsg.ShareFetchResponse {
		t.Helper()
		group := "g"
		req := kmsg.NewPtrShareFetchRequest()
		req.SetVersion(2)
		req.GroupID, req.MemberID = &group, &member
		req.ShareSessionEpoch, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.MaxRecords = 0, 0, 1, 1<<20, 100
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = ss.topicID
		rt.Partitions = append(rt.Partitions, kmsg.NewShareFetchRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		resp := c.roundTrip(req).(*kmsg.ShareFetchResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("share fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		return resp
	}
	acquired := func(resp *kmsg.ShareFetchResponse) (n int64, bytes int) {
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				bytes += len(rp.Records)
				for _, r := range rp.AcquiredRecords {
					n += r.LastOffset - r.FirstOffset + 1
				}
			}
		}
		return n, bytes
	}
	// No quota: no throttle.
	if resp := fetch("free"); resp.ThrottleMillis != 0 {
		t.Fatalf("throttled %d ms with no quota", resp.ThrottleMillis)
	} else if n, _ := acquired(resp); n != 3 {
		t.Fatalf("acquired %d records, want 3", n)
	}
	for _, v := range []string{"d", "e", "f"} {
		ss.appendBatch(t, v)
	}
	// A default consumer_byte_rate of 1 byte a second, for every client.
	aq := kmsg.NewPtrAlterClientQuotasRequest()
	entry := kmsg.NewAlterClientQuotasRequestEntry()
	entry.Entity = []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id"}} // Name nil: the default
	entry.Ops = []kmsg.AlterClientQuotasRequestEntryOp{{Key: "consumer_byte_rate", Value: 1}}
	aq.Entries = append(aq.Entries, entry)
	for _, e := range c.roundTrip(aq).(*kmsg.AlterClientQuotasResponse).Entries {
		if e.ErrorCode != 0 {
			t.Fatalf("alter quota: %v", kerr.ErrorForCode(e.ErrorCode))
		}
	}
	resp := fetch("throttled")
	n, bytes := acquired(resp)
	if n != 3 || bytes == 0 {
		t.Fatalf("throttled response acquired %d records in %d bytes, want the 3 records it acquired", n, bytes)
	}
	if resp.ThrottleMillis <= 0 {
		t.Fatalf("%d bytes over a 1 byte/s quota, throttle %d ms", bytes, resp.ThrottleMillis)
	}
}
