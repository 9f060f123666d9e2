package wire

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/replication/quota"
)

// fakeCluster is a Cluster of one topic, "t", with one partition, and the
// brokers given; what the tests here do not call stays nil and panics.
type fakeCluster struct {
	Cluster
	partition *fakePartition
	brokers   []replication.Broker
}

func (c *fakeCluster) ClusterID() string                   { return "fake" }
func (c *fakeCluster) ClientQuotas() quota.Set             { return nil }
func (c *fakeCluster) NodeID() int32                       { return 1 }
func (c *fakeCluster) ControllerID() int32                 { return 1 }
func (c *fakeCluster) Brokers() []replication.Broker       { return c.brokers }
func (c *fakeCluster) TopicByID(id [16]byte) (Topic, bool) { return c.Topic("t") }
func (c *fakeCluster) Topic(name string) (Topic, bool)     { return fakeTopic{c}, name == "t" }
func (c *fakeCluster) Partition(topic string, index int32) (Partition, error) {
	if topic != "t" || index != 0 {
		return nil, kerr.UnknownTopicOrPartition
	}
	return c.partition, nil
}

type fakeTopic struct{ c *fakeCluster }

func (t fakeTopic) Name() string                    { return "t" }
func (t fakeTopic) ID() [16]byte                    { return [16]byte{1} }
func (t fakeTopic) Internal() bool                  { return false }
func (t fakeTopic) PartitionCount() int32           { return 1 }
func (t fakeTopic) Partition(index int32) Partition { return t.c.partition }

// fakePartition is a partition whose leadership, replicas and config a
// test sets. Append and Read answer err; Append counts its calls.
type fakePartition struct {
	Partition
	leader, epoch    int32
	replicas, inSync []int32
	minInSync        int
	err              error
	appends          int
}

func (p *fakePartition) Append(ctx context.Context, batches []byte) (replication.Appended, error) {
	p.appends++
	return replication.Appended{}, p.err
}
func (p *fakePartition) Read(dst []byte, req partition.ReadRequest) (partition.ReadResult, error) {
	return partition.ReadResult{}, p.err
}
func (p *fakePartition) Offsets() partition.Offsets { return partition.Offsets{} }
func (p *fakePartition) Leader() (int32, int32)     { return p.leader, p.epoch }
func (p *fakePartition) LeaderEpoch() int32         { return p.epoch }
func (p *fakePartition) Replicas() []int32          { return p.replicas }
func (p *fakePartition) InSync() []int32            { return p.inSync }
func (p *fakePartition) Config() partition.Config {
	cfg := partition.DefaultConfig()
	cfg.MinInSyncReplicas = p.minInSync
	return cfg
}

var _ configuredPartition = (*fakePartition)(nil)

func newFakeServer(p *fakePartition) *Server {
	c := &fakeCluster{partition: p, brokers: []replication.Broker{
		{NodeID: 1, Host: "h1", Port: 9092}, {NodeID: 2, Host: "h2", Port: 9093}, {NodeID: 3, Host: "h3", Port: 9094},
	}}
	return NewServer[Topic, Partition](c, DefaultConfig(), Options{})
}

func produceRequest(version, acks int16) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = acks
	req.TimeoutMillis = 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = "t", [16]byte{1}
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = oneRecordBatch([]byte("v"))
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// roundTripResponse encodes resp and decodes it again at its version, as a
// client would read it, so that tagged fields are checked on the wire.
func roundTripResponse(t *testing.T, resp kmsg.Response) kmsg.Response {
	t.Helper()
	out := resp.RequestKind().ResponseKind()
	out.SetVersion(resp.GetVersion())
	if err := out.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("decode %T v%d: %v", resp, resp.GetVersion(), err)
	}
	return out
}

// TestProduceMinInSyncReplicas checks that acks=all to a partition with
// fewer in-sync replicas than min.insync.replicas is NOT_ENOUGH_REPLICAS
// before anything is appended, and that acks=1 and acks=0 are not refused.
func TestProduceMinInSyncReplicas(t *testing.T) {
	tests := []struct {
		name       string
		acks       int16
		minInSync  int
		inSync     []int32
		wantRefuse bool
	}{
		{"acks=all below", -1, 2, []int32{1}, true},
		{"acks=all all three required, two in sync", -1, 3, []int32{1, 2}, true},
		{"acks=all at", -1, 2, []int32{1, 2}, false},
		{"acks=all default 1", -1, 1, []int32{1}, false},
		{"acks=all unset counts as 1", -1, 0, []int32{1}, false},
		{"acks=1 below", 1, 2, []int32{1}, false},
		{"acks=0 below", 0, 2, []int32{1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakePartition{leader: 1, epoch: 3, replicas: []int32{1, 2, 3}, inSync: tt.inSync, minInSync: tt.minInSync}
			s := newFakeServer(p)
			r := handleProduce(s, context.Background(), produceRequest(9, tt.acks))
			if !tt.wantRefuse {
				if p.appends != 1 {
					t.Errorf("%d appends, want 1", p.appends)
				}
				if r.resp != nil {
					if code := r.resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
						t.Errorf("error %v", kerr.ErrorForCode(code))
					}
				}
				return
			}
			if p.appends != 0 {
				t.Errorf("%d appends of a refused batch, want 0", p.appends)
			}
			resp, ok := r.resp.(*kmsg.ProduceResponse)
			if !ok {
				t.Fatalf("reply %+v, want an immediate response", r)
			}
			sp := resp.Topics[0].Partitions[0]
			if sp.ErrorCode != kerr.NotEnoughReplicas.Code {
				t.Errorf("error %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(sp.ErrorCode))
			}
			if sp.ErrorMessage == nil {
				t.Error("no error message")
			}
		})
	}
}

// TestNotLeaderNamesCurrentLeader checks KIP-951: Produce v10+ and Fetch
// v12+ answering NOT_LEADER_OR_FOLLOWER name the current leader and epoch,
// and Produce v10+ and Fetch v16+ give that broker's address; older
// versions, and a partition whose leader is not known, name none.
func TestNotLeaderNamesCurrentLeader(t *testing.T) {
	tests := []struct {
		name          string
		api           string
		version       int16
		leader, epoch int32
		wantLeader    bool
		wantEndpoints bool
	}{
		{"produce v9", "produce", 9, 2, 7, false, false},
		{"produce v10", "produce", 10, 2, 7, true, true},
		{"produce v13", "produce", 13, 2, 7, true, true},
		{"produce v13 leader unknown", "produce", 13, -1, 7, false, false},
		{"produce v13 leader guessed", "produce", 13, 2, -1, false, false},
		{"fetch v11", "fetch", 11, 2, 7, false, false},
		{"fetch v12", "fetch", 12, 2, 7, true, false},
		{"fetch v16", "fetch", 16, 2, 7, true, true},
		{"fetch v18 leader unknown", "fetch", 18, -1, -1, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakePartition{leader: tt.leader, epoch: tt.epoch, replicas: []int32{1, 2, 3}, inSync: []int32{1, 2, 3}, err: kerr.NotLeaderForPartition}
			s := newFakeServer(p)
			var code int16
			var leader, epoch int32
			var endpoints []string
			switch tt.api {
			case "produce":
				r := handleProduce(s, context.Background(), produceRequest(tt.version, -1))
				resp := roundTripResponse(t, r.resp).(*kmsg.ProduceResponse)
				sp := resp.Topics[0].Partitions[0]
				code, leader, epoch = sp.ErrorCode, sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch
				for _, b := range resp.Brokers {
					endpoints = append(endpoints, b.Host)
				}
			case "fetch":
				req := kmsg.NewPtrFetchRequest()
				req.SetVersion(tt.version)
				req.SessionEpoch = -1
				req.MaxBytes = 1 << 20
				rt := kmsg.NewFetchRequestTopic()
				rt.Topic, rt.TopicID = "t", [16]byte{1}
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.PartitionMaxBytes = 1 << 20
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				r := handleFetch(s, context.Background(), req)
				resp := roundTripResponse(t, r.finish(context.Background())).(*kmsg.FetchResponse)
				r.release()
				sp := resp.Topics[0].Partitions[0]
				code, leader, epoch = sp.ErrorCode, sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch
				for _, b := range resp.Brokers {
					endpoints = append(endpoints, b.Host)
				}
			}
			if code != kerr.NotLeaderForPartition.Code {
				t.Fatalf("error %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
			}
			if tt.wantLeader && (leader != tt.leader || epoch != tt.epoch) {
				t.Errorf("current leader %d epoch %d, want %d epoch %d", leader, epoch, tt.leader, tt.epoch)
			}
			if !tt.wantLeader && (leader != -1 || epoch != -1) {
				t.Errorf("current leader %d epoch %d, want none (-1, -1)", leader, epoch)
			}
			if want := tt.wantEndpoints; want != (len(endpoints) == 1 && endpoints[0] == "h2") || !want && len(endpoints) != 0 {
				t.Errorf("node endpoints %v, want h2: %v", endpoints, want)
			}
		})
	}
}
