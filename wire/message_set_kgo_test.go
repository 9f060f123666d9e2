package wire

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sluice-io/sluice/replication"
)

// TestOldClientRoundTrip produces and consumes with franz-go pinned to
// Kafka 0.10.0 (Produce v2, Fetch v2: message format v1) and 0.9.0
// (Produce v1, Fetch v1: message format v0), with each codec.
func TestOldClientRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		versions *kversion.Versions
		codec    kgo.CompressionCodec
	}{
		{"kafka-0.9.0 gzip", kversion.V0_9_0(), kgo.GzipCompression()},
		{"kafka-0.9.0 snappy", kversion.V0_9_0(), kgo.SnappyCompression()},
		{"kafka-0.10.0 lz4", kversion.V0_10_0(), kgo.Lz4Compression()},
		{"kafka-0.10.0 uncompressed", kversion.V0_10_0(), kgo.NoCompression()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, cluster := newTestServer(t)
			if _, err := cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(tc.versions), kgo.ProducerBatchCompression(tc.codec),
				kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableIdempotentWrite())
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var recs []*kgo.Record
			for i := range 5 {
				recs = append(recs, &kgo.Record{Topic: "t", Key: []byte{'k', byte('0' + i)}, Value: []byte{'v', byte('0' + i)}})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			var got []*kgo.Record
			for len(got) < len(recs) {
				fs := cl.PollFetches(ctx)
				if err := fs.Err(); err != nil {
					t.Fatal(err)
				}
				got = append(got, fs.Records()...)
			}
			for i, r := range got {
				if r.Offset != int64(i) || string(r.Key) != string(recs[i].Key) || string(r.Value) != string(recs[i].Value) {
					t.Errorf("record %d: offset %d %q=%q", i, r.Offset, r.Key, r.Value)
				}
			}
		})
	}
}
