package wire

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

// downBrokerCluster is fakeCluster with broker 3 held down by the failure
// detector, the controller, and no topic auto-creation.
type downBrokerCluster struct{ *fakeCluster }

func (c downBrokerCluster) AutoCreateTopics() bool { return false }
func (c downBrokerCluster) ControllerID() int32    { return 3 }

func newDownBrokerServer(p *fakePartition) *Server {
	c := &fakeCluster{partition: p, brokers: []replication.Broker{
		{NodeID: 1, Host: "h1", Port: 9092}, {NodeID: 2, Host: "h2", Port: 9093}, {NodeID: 3, Host: "h3", Port: 9094, Down: true},
	}}
	return NewServer[Topic, Partition](downBrokerCluster{c}, DefaultConfig(), Options{})
}

// TestMetadataLiveBrokers checks that Metadata lists only live brokers,
// that neither the controller nor a partition's leader names a broker
// held down: a partition led by one answers LEADER_NOT_AVAILABLE
// with leader -1 and its epoch kept, that replicas on a down broker are
// offline replicas while replicas and ISR keep every id (v1+), and that
// v0 filters replicas and ISR to live brokers, as Kafka does.
func TestMetadataLiveBrokers(t *testing.T) {
	tests := []struct {
		name         string
		version      int16
		leader       int32
		wantLeader   int32
		wantCode     int16
		wantReplicas []int32
		wantISR      []int32
		wantOffline  []int32
	}{
		{"v12 leader down", 12, 3, -1, kerr.LeaderNotAvailable.Code, []int32{1, 2, 3}, []int32{1, 2, 3}, []int32{3}},
		{"v12 leader live", 12, 2, 2, 0, []int32{1, 2, 3}, []int32{1, 2, 3}, []int32{3}},
		{"v1 leader down", 1, 3, -1, kerr.LeaderNotAvailable.Code, []int32{1, 2, 3}, []int32{1, 2, 3}, nil},
		{"v0 leader live", 0, 2, 2, kerr.ReplicaNotAvailable.Code, []int32{1, 2}, []int32{1, 2}, nil},
		{"v0 leader down", 0, 3, -1, kerr.LeaderNotAvailable.Code, []int32{1, 2}, []int32{1, 2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newDownBrokerServer(&fakePartition{leader: tt.leader, epoch: 7, replicas: []int32{1, 2, 3}, inSync: []int32{1, 2, 3}})
			req := kmsg.NewPtrMetadataRequest()
			req.SetVersion(tt.version)
			rt := kmsg.NewMetadataRequestTopic()
			name := "t"
			rt.Topic = &name
			req.Topics = append(req.Topics, rt)
			r := handleMetadata(s, context.Background(), req)
			resp := roundTripResponse(t, r.resp).(*kmsg.MetadataResponse)
			var ids []int32
			for _, b := range resp.Brokers {
				ids = append(ids, b.NodeID)
			}
			if !slices.Equal(ids, []int32{1, 2}) {
				t.Fatalf("brokers %v, want [1 2]", ids)
			}
			if tt.version >= 1 && resp.ControllerID != -1 {
				t.Errorf("controller %d, want -1 (node 3 is down)", resp.ControllerID)
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("topics %+v", resp.Topics)
			}
			p := resp.Topics[0].Partitions[0]
			if p.Leader != tt.wantLeader || p.ErrorCode != tt.wantCode {
				t.Errorf("leader %d error %v, want %d %v", p.Leader, kerr.ErrorForCode(p.ErrorCode), tt.wantLeader, kerr.ErrorForCode(tt.wantCode))
			}
			if tt.version >= 7 && p.LeaderEpoch != 7 {
				t.Errorf("leader epoch %d, want 7", p.LeaderEpoch)
			}
			if !slices.Equal(p.Replicas, tt.wantReplicas) || !slices.Equal(p.ISR, tt.wantISR) {
				t.Errorf("replicas %v ISR %v, want %v %v", p.Replicas, p.ISR, tt.wantReplicas, tt.wantISR)
			}
			if len(p.OfflineReplicas) != len(tt.wantOffline) || (len(tt.wantOffline) > 0 && !slices.Equal(p.OfflineReplicas, tt.wantOffline)) {
				t.Errorf("offline replicas %v, want %v", p.OfflineReplicas, tt.wantOffline)
			}
		})
	}
}

// TestDescribeClusterFenced checks that DescribeCluster leaves out a
// broker held down, and lists it fenced when asked (v2
// IncludeFencedBrokers), and never names it controller.
func TestDescribeClusterFenced(t *testing.T) {
	s := newDownBrokerServer(&fakePartition{})
	for _, include := range []bool{false, true} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.SetVersion(2)
		req.IncludeFencedBrokers = include
		r := handleDescribeCluster(s, context.Background(), req)
		resp := roundTripResponse(t, r.resp).(*kmsg.DescribeClusterResponse)
		if resp.ControllerID != -1 {
			t.Errorf("include fenced %v: controller %d, want -1 (node 3 is down)", include, resp.ControllerID)
		}
		var got []int32
		for _, b := range resp.Brokers {
			got = append(got, b.NodeID)
			if b.IsFenced != (b.NodeID == 3) {
				t.Errorf("include %v: broker %d fenced %v", include, b.NodeID, b.IsFenced)
			}
		}
		want := []int32{1, 2}
		if include {
			want = []int32{1, 2, 3}
		}
		if !slices.Equal(got, want) {
			t.Errorf("include fenced %v: brokers %v, want %v", include, got, want)
		}
	}
}
