package wire

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeCluster checks DescribeCluster's answer at every version:
// the cluster id, the controller and every broker, authorized operations
// only when asked for, and UNSUPPORTED_ENDPOINT_TYPE for controller
// endpoints (v1+).
func TestDescribeCluster(t *testing.T) {
	s := newFakeServer(&fakePartition{})
	tests := []struct {
		name         string
		version      int16
		endpointType int8
		operations   bool
		wantCode     int16
	}{
		{"v0", 0, 0, false, 0},
		{"v0 with operations", 0, 0, true, 0},
		{"v1 brokers", 1, 1, false, 0},
		{"v1 controllers", 1, 2, false, kerr.UnsupportedEndpointType.Code},
		{"v2 brokers", 2, 1, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.SetVersion(tt.version)
			req.EndpointType = tt.endpointType
			req.IncludeClusterAuthorizedOperations = tt.operations
			r := handleDescribeCluster(s, context.Background(), req)
			resp := roundTripResponse(t, r.resp).(*kmsg.DescribeClusterResponse)
			if resp.ErrorCode != tt.wantCode {
				t.Fatalf("error %v, want %v", kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(tt.wantCode))
			}
			if tt.wantCode != 0 {
				if resp.ErrorMessage == nil || len(resp.Brokers) != 0 {
					t.Errorf("refusal with message %v and brokers %+v", resp.ErrorMessage, resp.Brokers)
				}
				return
			}
			if resp.ClusterID != "fake" || resp.ControllerID != 1 || len(resp.Brokers) != 3 {
				t.Fatalf("cluster %q controller %d brokers %+v", resp.ClusterID, resp.ControllerID, resp.Brokers)
			}
			if b := resp.Brokers[1]; b.NodeID != 2 || b.Host != "h2" || b.Port != 9093 {
				t.Errorf("broker 2 is %+v", b)
			}
			if got := resp.ClusterAuthorizedOperations == allClusterOperations; got != tt.operations {
				t.Errorf("authorized operations %d, asked for: %v", resp.ClusterAuthorizedOperations, tt.operations)
			}
		})
	}
}
