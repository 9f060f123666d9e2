package txn

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replication"
)

// downCluster is a cluster whose failure detector holds every broker
// down (a state replication never reports of this node; it stands in for
// the leader of a __transaction_state partition being down).
type downCluster struct {
	*replication.Cluster
	down atomic.Bool
}

func (c *downCluster) Brokers() []replication.Broker {
	bs := c.Cluster.Brokers()
	for i := range bs {
		bs[i].Down = c.down.Load()
	}
	return bs
}

// TestFindCoordinatorLeaderDown checks that FindCoordinator never names a
// leader the failure detector holds down: COORDINATOR_NOT_AVAILABLE, so
// that the client asks again, and the leader once it is up.
func TestFindCoordinatorLeaderDown(t *testing.T) {
	cl := &downCluster{Cluster: openCluster(t, t.TempDir())}
	c, err := New(cl, testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	find := func() kmsg.FindCoordinatorResponseCoordinator {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version, req.CoordinatorType, req.CoordinatorKeys = 4, 1, []string{testID}
		return c.FindCoordinator(context.Background(), req).Coordinators[0]
	}
	if co := find(); co.ErrorCode != 0 || co.NodeID != cl.NodeID() {
		t.Fatalf("FindCoordinator with the leader up: %+v", co)
	}
	cl.down.Store(true)
	if co := find(); co.ErrorCode != kerr.CoordinatorNotAvailable.Code || co.NodeID != -1 || co.ErrorMessage == nil {
		t.Fatalf("FindCoordinator with the leader down: %+v, want COORDINATOR_NOT_AVAILABLE", co)
	}
}
