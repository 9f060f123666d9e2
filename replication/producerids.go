package replication

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/replication/meta"
)

// producerIDBlockSize is how many producer ids one AllocateProducerIDBlock
// reserves for a node.
const producerIDBlockSize = 1000

// ProducerIDBlock is a range of producer ids [First, First+Size) reserved
// in the metadata for one node.
type ProducerIDBlock struct {
	First int64
	Size  int32
}

// ProducerIDBlockFunc asks the metadata leader, node leader, for a block
// of producer ids reserved for this node (package wire sends Kafka's
// AllocateProducerIds). It is called only on a node that is not the
// leader, with pidMu held; ctx bounds it.
type ProducerIDBlockFunc func(ctx context.Context, leader int32) (ProducerIDBlock, error)

// AllocateProducerID returns a producer id never handed out before by
// this cluster. Ids come from a block reserved for this node in the
// metadata (AllocateProducerIDBlock) before any of them is returned, so
// they never repeat across restarts or nodes; the unused rest of a block
// is skipped after a restart. Reserving a block needs the metadata
// leader: on another node remote asks it (when remote is nil, or no
// leader is known, the error unwraps to kerr.NotController).
func (c *Cluster) AllocateProducerID(ctx context.Context, remote ProducerIDBlockFunc) (int64, error) {
	c.pidMu.Lock()
	defer c.pidMu.Unlock()
	if c.isClosed() {
		return 0, ErrClosed
	}
	if c.nextProducerID >= c.producerIDLimit {
		block, err := c.AllocateProducerIDBlock(ctx, c.cfg.NodeID)
		var nl *meta.NotLeaderError
		if errors.As(err, &nl) && nl.LeaderID >= 0 && remote != nil {
			block, err = remote(ctx, nl.LeaderID)
			if err == nil && block.Size < 1 {
				err = fmt.Errorf("node %d answered an empty producer id block at %d: %w", nl.LeaderID, block.First, kerr.UnknownServerError)
			}
		}
		if err != nil {
			return 0, err
		}
		c.nextProducerID, c.producerIDLimit = block.First, block.First+int64(block.Size)
	}
	id := c.nextProducerID
	c.nextProducerID++
	return id, nil
}

// AllocateProducerIDBlock reserves a block of producer ids for node, a
// registered node (this one, or a follower asking with AllocateProducerIds).
// It runs on the metadata leader only: elsewhere the error is a
// *meta.NotLeaderError (kerr.NotController). An unregistered node is
// kerr.ClusterAuthorizationFailed.
func (c *Cluster) AllocateProducerIDBlock(ctx context.Context, node int32) (ProducerIDBlock, error) {
	if c.isClosed() {
		return ProducerIDBlock{}, ErrClosed
	}
	if err := c.controller(); err != nil {
		return ProducerIDBlock{}, err
	}
	if _, ok := c.group.State().Node(node); !ok {
		return ProducerIDBlock{}, fmt.Errorf("node %d is not a member of this cluster: %w", node, kerr.ClusterAuthorizationFailed)
	}
	res, err := c.propose(ctx, &meta.AllocateProducerIDBlock{NodeID: node, Size: producerIDBlockSize})
	if err != nil {
		return ProducerIDBlock{}, err
	}
	return ProducerIDBlock{First: res.ProducerIDs.First, Size: int32(res.ProducerIDs.Size)}, nil
}
