package test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxVersion returns the newest version of req's API that both the server
// (per ApiVersions) and kmsg support.
func maxVersion(tb testing.TB, keys map[int16]kmsg.ApiVersionsResponseApiKey, req kmsg.Request) int16 {
	tb.Helper()
	k, ok := keys[req.Key()]
	if !ok {
		tb.Fatalf("server does not advertise %s", kmsg.NameForKey(req.Key()))
	}
	return min(k.MaxVersion, req.MaxVersion())
}

// rawProduce sends one Produce request with batch to topic/partition at the
// newest common version (topic by name, so at most v12) and returns the
// partition's response.
func rawProduce(tb testing.TB, c *rawConn, keys map[int16]kmsg.ApiVersionsResponseApiKey, topic string, partition int32, batch []byte) kmsg.ProduceResponseTopicPartition {
	tb.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(min(maxVersion(tb, keys, req), 12))
	req.Acks = -1
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.mustRoundTrip(req).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		tb.Fatalf("Produce v%d response has %d topics, want 1 with 1 partition: %+v", req.Version, len(resp.Topics), resp)
	}
	return resp.Topics[0].Partitions[0]
}

// rawEndOffset returns topic/partition's high watermark via ListOffsets.
func rawEndOffset(tb testing.TB, c *rawConn, keys map[int16]kmsg.ApiVersionsResponseApiKey, topic string, partition int32) int64 {
	tb.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(max(1, maxVersion(tb, keys, req)))
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = -1 // latest
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.mustRoundTrip(req).(*kmsg.ListOffsetsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		tb.Fatalf("ListOffsets response has unexpected shape: %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		tb.Fatalf("ListOffsets %s/%d latest: %v", topic, partition, err)
	}
	return p.Offset
}

func wantCode(tb testing.TB, what string, code int16, want *kerr.Error) {
	tb.Helper()
	if got := kerr.ErrorForCode(code); !errors.Is(got, want) {
		tb.Errorf("%s: error code %d (%v), want %d (%v)", what, code, got, want.Code, want)
	}
}

// TestUnknownTopicWithoutAutoCreate checks that with
// auto.create.topics.enable=false, Metadata (even asking for auto-creation)
// and Produce for an unknown topic answer UNKNOWN_TOPIC_OR_PARTITION and
// create nothing.
func TestUnknownTopicWithoutAutoCreate(t *testing.T) {
	srv := startServer(t, withAutoCreate(false))
	keys := apiVersions(t, srv.Addr)
	c := dialRaw(t, srv.Addr)
	const topic = "no-such-topic"

	for range 2 { // the second Metadata proves the first created nothing
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(max(4, maxVersion(t, keys, req))) // v4+ has AllowAutoTopicCreation
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		req.AllowAutoTopicCreation = true
		resp := c.mustRoundTrip(req).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("Metadata for 1 topic answered %d topics", len(resp.Topics))
		}
		wantCode(t, "Metadata v"+strconv.Itoa(int(req.Version))+" unknown topic", resp.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
	}

	p := rawProduce(t, c, keys, topic, 0, makeBatch(1, batchRecord{Value: []byte("v")}))
	wantCode(t, "Produce to unknown topic", p.ErrorCode, kerr.UnknownTopicOrPartition)
}

// TestCreateExistingTopic checks CreateTopics answers TOPIC_ALREADY_EXISTS
// for a topic that exists, and leaves it unchanged.
func TestCreateExistingTopic(t *testing.T) {
	srv := startServer(t)
	createTopic(t, srv.Addr, "twice", 3)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	adm := newAdmin(t, srv.Addr)
	// kadm returns the topic's error both in the response and as err.
	resp, err := adm.CreateTopic(ctx, 5, 1, nil, "twice")
	if !errors.Is(resp.Err, kerr.TopicAlreadyExists) || !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("second CreateTopics: %v (response %v), want %v", err, resp.Err, kerr.TopicAlreadyExists)
	}
	topics, err := adm.ListTopics(ctx, "twice")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topics["twice"].Partitions); n != 3 {
		t.Errorf("topic has %d partitions after the failed create, want 3", n)
	}
}

// TestCorruptBatch sends batches whose CRC no longer matches and expects
// CORRUPT_MESSAGE with the log unchanged.
func TestCorruptBatch(t *testing.T) {
	srv := startServer(t)
	const topic = "crc"
	createTopic(t, srv.Addr, topic, 1)
	keys := apiVersions(t, srv.Addr)
	c := dialRaw(t, srv.Addr)

	good := rawProduce(t, c, keys, topic, 0, makeBatch(1000, batchRecord{Key: []byte("k"), Value: []byte("good")}))
	if good.ErrorCode != 0 || good.BaseOffset != 0 {
		t.Fatalf("good batch: error code %d, base offset %d; want 0, 0", good.ErrorCode, good.BaseOffset)
	}

	for _, tc := range []struct {
		name string
		at   int // byte flipped
	}{
		{"crc byte", 17},
		{"attributes byte", 21},
		{"value byte", -2}, // from the end
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch := makeBatch(2000, batchRecord{Key: []byte("k"), Value: []byte("bad!")}, batchRecord{Value: []byte("also bad")})
			at := tc.at
			if at < 0 {
				at += len(batch)
			}
			batch[at] ^= 0xff
			p := rawProduce(t, c, keys, topic, 0, batch)
			wantCode(t, "Produce of a batch with a flipped "+tc.name, p.ErrorCode, kerr.CorruptMessage)
			if end := rawEndOffset(t, c, keys, topic, 0); end != 1 {
				t.Errorf("end offset %d after the rejected batch, want 1", end)
			}
		})
	}

	// The log still holds exactly the good record.
	consumer := newClient(t, srv.Addr, consumeFromStart(topic)...)
	got := consumeN(t, consumer, 1)
	if string(got[0].Value) != "good" || got[0].Offset != 0 {
		t.Errorf("log holds %q at offset %d, want \"good\" at 0", got[0].Value, got[0].Offset)
	}
}

// TestMalformedFrames sends frames that cannot be served and expects the
// server to close only that connection: a connection opened before still
// works, and so does a new one.
func TestMalformedFrames(t *testing.T) {
	const maxRequest = 1 << 20
	srv := startServer(t, withMaxRequestBytes(maxRequest))
	bystander := dialRaw(t, srv.Addr)
	ping := func(t *testing.T, c *rawConn, what string) {
		t.Helper()
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(0)
		if resp, err := c.roundTrip(req); err != nil {
			t.Fatalf("%s: ApiVersions: %v", what, err)
		} else if code := resp.(*kmsg.ApiVersionsResponse).ErrorCode; code != 0 {
			t.Fatalf("%s: ApiVersions error code %d", what, code)
		}
	}
	ping(t, bystander, "before")

	frame := func(size int32, body ...byte) []byte {
		return append([]byte{byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size)}, body...)
	}
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"size above socket.request.max.bytes", frame(maxRequest+1, make([]byte, 64)...)},
		{"size 2 GiB-1", frame(1<<31-1, 1, 2, 3)},
		{"negative size", frame(-1, 1, 2, 3)},
		{"http request", []byte("GET / HTTP/1.1\r\nHost: sluice\r\n\r\n")},
		{"unknown api key", frame(10, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0)},
		{"header shorter than its fields", frame(3, 0, 18, 0)},
		{"all 0xff", frame(16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
		{"metadata body garbage", frame(20, 0, 3, 0, 9, 0, 0, 0, 7, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, srv.Addr)
			if err := c.writeBytes(tc.bytes); err != nil {
				t.Fatalf("write: %v", err)
			}
			if err := c.waitClosed(); err != nil {
				t.Errorf("after %s: %v", tc.name, err)
			}
			ping(t, bystander, "connection opened before")
			ping(t, dialRaw(t, srv.Addr), "new connection")
		})
	}
}
