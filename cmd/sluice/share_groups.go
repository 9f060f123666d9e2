package main

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/consumergroup/sharestate"
	"github.com/sluice-io/sluice/replication"
)

// shareStateStore adapts the share coordinator's Persister to the group
// coordinator's ShareStateStore (consumergroup cannot import sharestate,
// which builds on it): the key and summary types have the same fields.
// It also reads partitions' high watermarks for the share-partition lag
// (consumergroup.ShareEndOffsets): a partition this node leads from its
// replica, another's with ListOffsets to its leader through peers.
type shareStateStore struct {
	persister sharestate.Persister
	cluster   *replication.Cluster
	self      int32
	peers     sharestate.Peers
}

var (
	_ consumergroup.ShareStateStore = shareStateStore{}
	_ consumergroup.ShareEndOffsets = shareStateStore{}
)

func (s shareStateStore) Initialize(ctx context.Context, key consumergroup.ShareStateKey, stateEpoch int32, startOffset int64) error {
	return s.persister.Initialize(ctx, sharestate.Key(key), stateEpoch, startOffset)
}

func (s shareStateStore) ReadSummary(ctx context.Context, key consumergroup.ShareStateKey) (consumergroup.ShareStateSummary, error) {
	sum, err := s.persister.ReadSummary(ctx, sharestate.Key(key))
	return consumergroup.ShareStateSummary(sum), err
}

func (s shareStateStore) Delete(ctx context.Context, key consumergroup.ShareStateKey) error {
	return s.persister.Delete(ctx, sharestate.Key(key))
}

// HighWatermark implements consumergroup.ShareEndOffsets.
func (s shareStateStore) HighWatermark(ctx context.Context, topic string, index int32) (int64, error) {
	t, ok := s.cluster.Topic(topic)
	if !ok || index < 0 || index >= t.PartitionCount() {
		return 0, fmt.Errorf("partition %s-%d: %w", topic, index, kerr.UnknownTopicOrPartition)
	}
	p := t.Partition(index)
	leader, _ := p.Leader()
	if leader == s.self {
		if o, ok := p.LocalOffsets(); ok {
			return o.HighWatermark, nil
		}
	}
	if leader < 0 {
		return 0, fmt.Errorf("partition %s-%d has no leader: %w", topic, index, kerr.LeaderNotAvailable)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.Timestamp = index, -1, -1 // the latest offset: the high watermark
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := s.peers.Request(ctx, leader, req)
	if err != nil {
		return 0, fmt.Errorf("ListOffsets of %s-%d to node %d: %w", topic, index, leader, err)
	}
	for _, rt := range resp.(*kmsg.ListOffsetsResponse).Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic != topic || rp.Partition != index {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return 0, fmt.Errorf("ListOffsets of %s-%d on node %d: %w", topic, index, leader, err)
			}
			return rp.Offset, nil
		}
	}
	return 0, fmt.Errorf("ListOffsets of %s-%d on node %d: partition missing from the response: %w", topic, index, leader, kerr.UnknownServerError)
}
