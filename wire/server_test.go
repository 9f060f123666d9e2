package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition/record"
	"github.com/sluice-io/sluice/replication"
)

// newTestServer serves a real single-node cluster in t.TempDir on a
// loopback port and returns its address.
func newTestServer(t *testing.T) (string, *replication.Cluster) {
	t.Helper()
	return newTestServerWith(t, Options{})
}

// newTestServerWith is newTestServer with server options (a group
// coordinator, say).
func newTestServerWith(t *testing.T, opts Options) (string, *replication.Cluster) {
	t.Helper()
	ts := startTestServer(t, opts)
	return ts.addr, ts.cluster
}

// testServer is a Server on a real cluster, serving a loopback listener.
type testServer struct {
	*Server
	addr    string
	cluster *replication.Cluster

	served  chan error
	once    sync.Once
	stopErr error
}

// startTestServer starts a server on a single-node cluster in t.TempDir;
// t.Cleanup shuts both down.
func startTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	return startTestServerOn(t, func(*replication.Cluster) (Options, func(context.Context) error) { return opts, nil })
}

// startTestServerOn is startTestServer with the options made from the
// cluster (a real coordinator on it); closer, when not nil, closes what
// they hold, after the server stops and before the cluster closes.
func startTestServerOn(t *testing.T, options func(*replication.Cluster) (opts Options, closer func(context.Context) error)) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := replication.DefaultConfig()
	cfg.DataDir = t.TempDir()
	if err := cfg.SetAdvertisedAddress(l.Addr().String()); err != nil {
		t.Fatal(err)
	}
	cluster, err := replication.Open(cfg, replication.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts, closer := options(cluster)
	ts := &testServer{Server: NewServer(cluster, DefaultConfig(), opts), addr: l.Addr().String(), cluster: cluster, served: make(chan error, 1)}
	go func() { ts.served <- ts.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.stop(ctx); err != nil {
			t.Error(err)
		}
		if closer != nil {
			if err := closer(ctx); err != nil {
				t.Error(err)
			}
		}
		cluster.Close(ctx)
	})
	return ts
}

// stop shuts the server down once and checks that Serve then returned
// ErrServerClosed; later calls return the first call's result.
func (ts *testServer) stop(ctx context.Context) error {
	ts.once.Do(func() {
		if err := ts.Shutdown(ctx); err != nil {
			ts.stopErr = fmt.Errorf("shutdown: %w", err)
			return
		}
		if err := <-ts.served; err != ErrServerClosed {
			ts.stopErr = fmt.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts.stopErr
}

// rawClient speaks the protocol by hand, so tests control versions,
// pipelining and malformed input.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dial(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawClient) send(req kmsg.Request, correlationID int32) {
	c.t.Helper()
	body := frameFor(req, correlationID, nil)
	if _, err := c.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
		c.t.Fatal(err)
	}
}

// receive reads one response to req (sent with correlationID) and decodes it
// at version.
func (c *rawClient) receive(req kmsg.Request, correlationID int32, version int16) kmsg.Response {
	c.t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		c.t.Fatalf("read size: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, frame); err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != correlationID {
		c.t.Fatalf("correlation id %d, want %d", got, correlationID)
	}
	body := frame[4:]
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %s v%d: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	return resp
}

func (c *rawClient) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.send(req, 1)
	return c.receive(req, 1, req.GetVersion())
}

func TestAPIVersionsFallback(t *testing.T) {
	addr, _ := newTestServer(t)
	c := dial(t, addr)
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(99)
	// The answer must be a v0 response: decode it at v0.
	c.send(req, 2)
	v0 := c.receive(req, 2, 0).(*kmsg.ApiVersionsResponse)
	// KIP-511, as Kafka: only ApiVersions' own versions, to retry with.
	if v0.ErrorCode != kerr.UnsupportedVersion.Code || len(v0.ApiKeys) != 1 || v0.ApiKeys[0].ApiKey != apiVersionsKey ||
		v0.ApiKeys[0].MaxVersion != lookupAPI(apiVersionsKey).maxVersion {
		t.Fatalf("v0 fallback: error %d, keys %+v", v0.ErrorCode, v0.ApiKeys)
	}
}

func TestPipelinedResponsesInOrder(t *testing.T) {
	addr, _ := newTestServer(t)
	c := dial(t, addr)
	// A long-polling fetch first, then metadata: the metadata answer must
	// not overtake the fetch's.
	create := kmsg.NewPtrCreateTopicsRequest()
	create.SetVersion(7)
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "t", 1, 1
	create.Topics = append(create.Topics, ct)
	if r := c.roundTrip(create).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %d", r.Topics[0].ErrorCode)
	}
	fetch := fetchRequest("t", 0, 200)
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	c.send(fetch, 10)
	c.send(meta, 11)
	c.receive(fetch, 10, fetch.GetVersion())
	c.receive(meta, 11, meta.GetVersion())
}

func fetchRequest(topic string, offset int64, maxWaitMillis int32) *kmsg.FetchRequest {
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(12)
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = maxWaitMillis, 1, 1<<20
	fetch.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.PartitionMaxBytes = offset, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	return fetch
}

func TestFetchLongPollWokenByAppend(t *testing.T) {
	addr, cluster := newTestServer(t)
	if _, err := cluster.CreateTopic(context.Background(), replication.CreateTopicRequest{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	// A fetch that would wait a minute returns as soon as a record lands.
	fetch := fetchRequest("t", 0, 60_000)
	c.send(fetch, 1)

	producer := dial(t, addr)
	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(9)
	produce.Acks, produce.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = oneRecordBatch([]byte("hello"))
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	start := time.Now()
	if r := producer.roundTrip(produce).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", r.Topics[0].Partitions[0].ErrorCode)
	}
	resp := c.receive(fetch, 1, fetch.GetVersion()).(*kmsg.FetchResponse)
	if waited := time.Since(start); waited > 30*time.Second {
		t.Fatalf("fetch waited %s: not woken by the append", waited)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.HighWatermark != 1 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch: error %d hwm %d, %d bytes", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
	}
}

// oneRecordBatch encodes an uncompressed v2 batch holding one record.
func oneRecordBatch(value []byte) []byte {
	var b record.Builder
	b.Add(time.Now().UnixMilli(), nil, value)
	raw, err := b.AppendTo(nil)
	if err != nil {
		panic(err) // one record, no compression: cannot fail
	}
	return raw
}

func TestOversizedFrameClosesOnlyItsConnection(t *testing.T) {
	addr, _ := newTestServer(t)
	bad := dial(t, addr)
	good := dial(t, addr)
	bad.nc.Write(binary.BigEndian.AppendUint32(nil, 1<<30))
	var b [1]byte
	if _, err := bad.nc.Read(b[:]); err != io.EOF {
		t.Fatalf("oversized frame: read %v, want EOF", err)
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	if r := good.roundTrip(req).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("other connection broken: %d", r.ErrorCode)
	}
}

func TestUnsupportedVersionClosesConnection(t *testing.T) {
	addr, _ := newTestServer(t)
	c := dial(t, addr)
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(14) // above the table's maximum
	c.send(req, 1)
	var b [1]byte
	if _, err := c.nc.Read(b[:]); err != io.EOF {
		t.Fatalf("read %v, want EOF", err)
	}
}
