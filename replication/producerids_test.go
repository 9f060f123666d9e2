package replication

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestProducerIDBlocksFromLeader checks that a node that is not the
// metadata leader hands out producer ids from blocks the leader reserves
// for it, never one another node handed out, and that without a way to
// reach the leader it answers NOT_CONTROLLER.
func TestProducerIDBlocksFromLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := openGroupNodes(t, 1, 2, 3)
	leader := leaderOf(t, nodes)
	if _, err := leader.AllocateProducerIDBlock(ctx, 99); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("a block for unregistered node 99: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	seen := map[int64]int32{}
	for id, c := range nodes {
		if c != leader {
			if _, err := c.AllocateProducerID(ctx, nil); !errors.Is(err, kerr.NotController) {
				t.Fatalf("node %d without a remote: %v, want NOT_CONTROLLER", id, err)
			}
			if _, err := c.AllocateProducerIDBlock(ctx, id); !errors.Is(err, kerr.NotController) {
				t.Fatalf("a block reserved on node %d, not the leader: %v", id, err)
			}
		}
		calls := 0
		remote := func(ctx context.Context, to int32) (ProducerIDBlock, error) {
			calls++
			return nodes[to].AllocateProducerIDBlock(ctx, id)
		}
		for range producerIDBlockSize + 1 {
			pid, err := c.AllocateProducerID(ctx, remote)
			if err != nil {
				t.Fatalf("node %d: %v", id, err)
			}
			if other, ok := seen[pid]; ok {
				t.Fatalf("producer id %d handed out by nodes %d and %d", pid, other, id)
			}
			seen[pid] = id
		}
		if want := 2; c != leader && calls != want {
			t.Fatalf("node %d asked the leader for %d blocks, want %d", id, calls, want)
		}
	}
}
