package test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestClientProtocolVersions runs produce, consume and list offsets with a
// franz-go client pinned to old Kafka releases (old, non-flexible Produce,
// Fetch, Metadata and ListOffsets) and with the newest versions.
func TestClientProtocolVersions(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct {
		name     string
		versions *kversion.Versions // nil: newest
	}{
		{"kafka-0.10.2", kversion.V0_10_2()}, // message format v1: Produce v2, Fetch v3 (converted)
		{"kafka-0.11.0", kversion.V0_11_0()}, // first release with v2 batches: Produce v3, Fetch v5
		{"kafka-2.1.0", kversion.V2_1_0()},   // zstd; newest non-flexible Produce/Fetch
		{"kafka-2.4.0", kversion.V2_4_0()},   // flexible Metadata and ApiVersions
		{"newest", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "versions-" + tc.name
			createTopic(t, srv.Addr, topic, 2)
			var opts []kgo.Opt
			if tc.versions != nil {
				opts = append(opts, kgo.MaxVersions(tc.versions))
			}
			producer := newClient(t, srv.Addr, opts...)
			produced := makeRecords(topic, 500)
			legacy := tc.versions != nil && !tc.versions.HasKey(22) // no InitProducerId: before 0.11
			if legacy {
				for _, r := range produced {
					r.Headers = nil // message format v1 has no headers
				}
			}
			produceAll(t, producer, produced)
			want := expectedByPartition(t, produced)

			consumer := newClient(t, srv.Addr, append(opts, consumeFromStart(topic)...)...)
			got := byPartition(consumeN(t, consumer, len(produced)))
			for p := range int32(2) {
				compareRecords(t, fmt.Sprintf("partition %d", p), got[p], want[p])
			}

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			ends, err := newAdmin(t, srv.Addr, opts...).ListEndOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			for p, records := range want {
				if end, _ := ends.Lookup(topic, p); end.Err != nil || end.Offset != int64(len(records)) {
					t.Errorf("partition %d end offset %+v, want %d", p, end, len(records))
				}
			}
		})
	}
}

// TestRawOldestAndNewestVersions sends ApiVersions, Metadata, ListOffsets,
// Produce and Fetch at the oldest and the newest version the server
// advertises, framed by hand, and expects sensible answers without error
// codes.
func TestRawOldestAndNewestVersions(t *testing.T) {
	srv := startServer(t)
	const topic = "raw-versions"
	createTopic(t, srv.Addr, topic, 1)
	keys := apiVersions(t, srv.Addr)
	c := dialRaw(t, srv.Addr)

	// Produce one batch so Fetch and ListOffsets have something to find.
	if p := rawProduce(t, c, keys, topic, 0, makeBatch(5000, batchRecord{Value: []byte("seed")})); p.ErrorCode != 0 {
		t.Fatalf("seed produce: error code %d", p.ErrorCode)
	}
	end := int64(1)

	// Metadata at the newest version gives the topic id that Fetch v13+
	// (and Produce v13+) use instead of the name.
	var topicID [16]byte
	{
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(maxVersion(t, keys, req))
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp := c.mustRoundTrip(req).(*kmsg.MetadataResponse)
		if len(resp.Topics) == 1 {
			topicID = resp.Topics[0].TopicID
		}
	}

	versions := func(req kmsg.Request) []int16 {
		k, ok := keys[req.Key()]
		if !ok {
			t.Errorf("server does not advertise %s", kmsg.NameForKey(req.Key()))
			return nil
		}
		if k.MinVersion > k.MaxVersion || k.MinVersion < 0 {
			t.Errorf("%s advertised with versions [%d, %d]", kmsg.NameForKey(req.Key()), k.MinVersion, k.MaxVersion)
		}
		if k.MaxVersion > req.MaxVersion() {
			t.Logf("%s: server advertises v%d, kmsg knows up to v%d; testing v%d", kmsg.NameForKey(req.Key()), k.MaxVersion, req.MaxVersion(), req.MaxVersion())
		}
		return slices.Compact([]int16{k.MinVersion, min(k.MaxVersion, req.MaxVersion())})
	}
	check := func(t *testing.T, what string, code int16) {
		t.Helper()
		if err := kerr.ErrorForCode(code); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}

	for _, v := range versions(kmsg.NewPtrApiVersionsRequest()) {
		t.Run(fmt.Sprintf("ApiVersions/v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrApiVersionsRequest()
			req.SetVersion(v)
			req.ClientSoftwareName = "sluice-e2e"
			req.ClientSoftwareVersion = "1.0.0"
			resp := c.mustRoundTrip(req).(*kmsg.ApiVersionsResponse)
			check(t, "ApiVersions", resp.ErrorCode)
			if len(resp.ApiKeys) != len(keys) {
				t.Errorf("ApiVersions v%d lists %d APIs, v0 listed %d", v, len(resp.ApiKeys), len(keys))
			}
		})
	}

	for _, v := range versions(kmsg.NewPtrMetadataRequest()) {
		t.Run(fmt.Sprintf("Metadata/v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrMetadataRequest()
			req.SetVersion(v)
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			resp := c.mustRoundTrip(req).(*kmsg.MetadataResponse)
			if len(resp.Brokers) != 1 || fmt.Sprintf("%s:%d", resp.Brokers[0].Host, resp.Brokers[0].Port) != srv.Addr {
				t.Errorf("brokers %+v, want one at %s", resp.Brokers, srv.Addr)
			}
			if len(resp.Topics) != 1 {
				t.Fatalf("%d topics, want 1", len(resp.Topics))
			}
			check(t, "topic", resp.Topics[0].ErrorCode)
			if len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("%d partitions, want 1", len(resp.Topics[0].Partitions))
			}
			p := resp.Topics[0].Partitions[0]
			check(t, "partition", p.ErrorCode)
			if p.Leader != resp.Brokers[0].NodeID {
				t.Errorf("partition leader %d, want broker %d", p.Leader, resp.Brokers[0].NodeID)
			}
		})
	}

	for _, v := range versions(kmsg.NewPtrDescribeClusterRequest()) {
		t.Run(fmt.Sprintf("DescribeCluster/v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.SetVersion(v)
			req.EndpointType = 1
			req.IncludeClusterAuthorizedOperations = true
			resp := c.mustRoundTrip(req).(*kmsg.DescribeClusterResponse)
			check(t, "DescribeCluster", resp.ErrorCode)
			if len(resp.Brokers) != 1 || fmt.Sprintf("%s:%d", resp.Brokers[0].Host, resp.Brokers[0].Port) != srv.Addr {
				t.Errorf("brokers %+v, want one at %s", resp.Brokers, srv.Addr)
			}
			if resp.ClusterID == "" || len(resp.Brokers) == 1 && resp.ControllerID != resp.Brokers[0].NodeID {
				t.Errorf("cluster id %q, controller %d; want an id and the only broker", resp.ClusterID, resp.ControllerID)
			}
		})
	}

	for _, v := range versions(kmsg.NewPtrProduceRequest()) {
		t.Run(fmt.Sprintf("Produce/v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(v)
			req.Acks = -1
			req.TimeoutMillis = 10_000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic, rt.TopicID = topic, topicID
			rp := kmsg.NewProduceRequestTopicPartition()
			value := fmt.Appendf(nil, "produce v%d", v)
			switch {
			case v <= 1: // message format v0
				rp.Records = makeMessageSet(0, 0, nil, value)
			case v == 2: // message format v1 (KIP-32)
				rp.Records = makeMessageSet(1, 6000, nil, value)
			default: // record batches (KIP-98)
				rp.Records = makeBatch(6000, batchRecord{Value: value})
			}
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := c.mustRoundTrip(req).(*kmsg.ProduceResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("response shape %+v", resp)
			}
			p := resp.Topics[0].Partitions[0]
			check(t, "partition", p.ErrorCode)
			if p.BaseOffset != end {
				t.Errorf("base offset %d, want %d", p.BaseOffset, end)
			}
			end = p.BaseOffset + 1
		})
	}

	for _, v := range versions(kmsg.NewPtrListOffsetsRequest()) {
		t.Run(fmt.Sprintf("ListOffsets/v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrListOffsetsRequest()
			req.SetVersion(v)
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp = -1
			rp.MaxNumOffsets = 1 // v0
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := c.mustRoundTrip(req).(*kmsg.ListOffsetsResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("response shape %+v", resp)
			}
			p := resp.Topics[0].Partitions[0]
			check(t, "partition", p.ErrorCode)
			got := p.Offset
			if v == 0 {
				got = -1
				if len(p.OldStyleOffsets) > 0 {
					got = p.OldStyleOffsets[0]
				}
			}
			if got != end {
				t.Errorf("latest offset %d, want %d", got, end)
			}
		})
	}

	for _, v := range versions(kmsg.NewPtrFetchRequest()) {
		t.Run(fmt.Sprintf("Fetch/v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(v)
			req.MaxWaitMillis = 0
			req.MinBytes = 1
			req.MaxBytes = 1 << 20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = topic, topicID
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp := c.mustRoundTrip(req).(*kmsg.FetchResponse)
			check(t, "fetch", resp.ErrorCode)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("response shape %+v", resp)
			}
			p := resp.Topics[0].Partitions[0]
			check(t, "partition", p.ErrorCode)
			if p.HighWatermark != end {
				t.Errorf("high watermark %d, want %d", p.HighWatermark, end)
			}
			if v < 4 {
				// Message sets: magic 0 for v0-1, magic 1 for v2-3.
				offset, magic, value, err := firstMessage(p.RecordBatches)
				if err != nil {
					t.Fatalf("first fetched message: %v", err)
				}
				wantMagic := int8(0)
				if v >= 2 {
					wantMagic = 1
				}
				if offset != 0 || magic != wantMagic || string(value) != "seed" {
					t.Errorf("first message at offset %d magic %d value %q, want 0, %d, \"seed\"", offset, magic, value, wantMagic)
				}
			} else {
				var batch kmsg.RecordBatch
				if err := batch.ReadFrom(p.RecordBatches); err != nil {
					t.Fatalf("first fetched batch: %v", err)
				}
				if batch.FirstOffset != 0 || batch.Magic != 2 {
					t.Errorf("first batch at offset %d magic %d, want 0 and 2", batch.FirstOffset, batch.Magic)
				}
			}

			// At the high watermark there is nothing to return: Records
			// must be empty, not null (size -1), which librdkafka rejects
			// ("invalid MessageSetSize -1").
			req.Topics[0].Partitions[0].FetchOffset = end
			resp = c.mustRoundTrip(req).(*kmsg.FetchResponse)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("response shape at the high watermark %+v", resp)
			}
			p = resp.Topics[0].Partitions[0]
			check(t, "partition at the high watermark", p.ErrorCode)
			if p.RecordBatches == nil {
				t.Errorf("Fetch v%d at the high watermark answered null records (size -1); want an empty, non-null records field", v)
			} else if len(p.RecordBatches) != 0 {
				t.Errorf("Fetch v%d at the high watermark answered %d bytes of records, want 0", v, len(p.RecordBatches))
			}
		})
	}
}
