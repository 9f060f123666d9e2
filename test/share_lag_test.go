package test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestShareGroupLag checks DescribeShareGroupOffsets v1's lag (KIP-1226)
// end to end: with the first of six records held (acquired, not
// acknowledged) and the other five accepted, the start offset stays at 0
// and the lag is high watermark 6 - start 0 - 5 delivered = 1, where log
// end minus start offset would say 6; `sluice share-group describe`
// shows the broker's lag in its table and JSON. v0 answers no lag.
func TestShareGroupLag(t *testing.T) {
	p := startProcess(t, t.TempDir())
	admin := newClient(t, p.Addr)
	requireShareGroups(t, admin)
	const topic, group = "share-lag", "share-lag-group"
	createTopic(t, p.Addr, topic, 1)
	setShareGroupConfigs(t, admin, group, map[string]string{"share.auto.offset.reset": "earliest"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// One batch (linger), so that one ShareFetch acquires all six.
	producer := newClient(t, p.Addr, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Second))
	var records []*kgo.Record
	for i := range 6 {
		records = append(records, &kgo.Record{Value: []byte("v" + strconv.Itoa(i))})
	}
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	worker := newShareConsumer(t, p.Addr, group, []string{topic})
	defer worker.Close()
	var polled []*kgo.Record
	for len(polled) == 0 {
		fs := worker.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no records polled")
		}
		polled = fs.Records()
	}
	if len(polled) != 6 {
		t.Fatalf("first poll: %d records, want the whole batch of 6", len(polled))
	}
	for _, r := range polled {
		if r.Offset != 0 {
			r.Ack(kgo.AckAccept)
		}
	}
	// Offset 0 stays acquired: polling again would accept it.
	if err := worker.FlushAcks(ctx); err != nil {
		t.Fatalf("FlushAcks: %v", err)
	}

	describe := func(version int16) kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition {
		t.Helper()
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		req.Version = version
		rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		rg.GroupID = group
		rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
		rt.Topic, rt.Partitions = topic, []int32{0}
		rg.Topics = append(rg.Topics, rt)
		req.Groups = append(req.Groups, rg)
		versions := kversion.Stable()
		versions.SetMaxKeyVersion(90, version)
		cl := newClient(t, p.Addr, kgo.MaxVersions(versions))
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 || len(resp.Groups[0].Topics) != 1 || len(resp.Groups[0].Topics[0].Partitions) != 1 {
			t.Fatalf("DescribeShareGroupOffsets v%d: %v %+v", version, err, resp)
		}
		return resp.Groups[0].Topics[0].Partitions[0]
	}
	var got kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition
	eventually(t, "offsets 1-5 acknowledged: start offset 0, lag 1", func() bool {
		got = describe(1)
		return got.ErrorCode == 0 && got.StartOffset == 0 && got.Lag == 1
	})
	if v0 := describe(0); v0.StartOffset != 0 || v0.Lag != -1 {
		t.Errorf("v0: start %d lag %d, want 0 and no lag (-1)", v0.StartOffset, v0.Lag)
	}

	out := mustCLI(t, p.Addr, "", "share-group", "describe", group)
	if row := tableRows(out)[topic]; len(row) != 5 || row[1] != "0" || row[2] != "0" || row[3] != "6" || row[4] != "1" {
		t.Errorf("share-group describe row %v, want partition 0 start 0 end 6 lag 1:\n%s", row, out)
	}
	var described struct {
		Partitions []struct {
			StartOffset *int64 `json:"start_offset"`
			LogEnd      *int64 `json:"log_end_offset"`
			Lag         *int64 `json:"lag"`
		} `json:"partitions"`
	}
	out = mustCLI(t, p.Addr, "", "share-group", "describe", group, "--format", "json")
	if err := json.Unmarshal([]byte(out), &described); err != nil || len(described.Partitions) != 1 {
		t.Fatalf("share-group describe --format json: %v\n%s", err, out)
	}
	if r := described.Partitions[0]; r.StartOffset == nil || *r.StartOffset != 0 || r.LogEnd == nil || *r.LogEnd != 6 || r.Lag == nil || *r.Lag != 1 {
		t.Errorf("share-group describe JSON: start %v end %v lag %v, want 0 6 1\n%s", r.StartOffset, r.LogEnd, r.Lag, out)
	}
}
