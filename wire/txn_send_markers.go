package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/txn"
	"github.com/sluice-io/sluice/partition"
)

// WriteTxnMarkers writes transaction marker m on each of partitions for
// the transaction coordinator (txn.MarkerWriter): on the partitions this
// node leads through writeTxnMarker, on the others with one
// WriteTxnMarkers request per leader, through the forwarding client. It
// returns the partitions not written with why (no leader known, a leader
// that refused or did not answer); the coordinator retries them. A
// partition whose topic no longer exists, or beyond its partition count,
// counts as written: nothing is left there to end. Safe for concurrent
// use.
func (s *Server) WriteTxnMarkers(ctx context.Context, m partition.TxnMarker, partitions []txn.TopicPartition) map[txn.TopicPartition]error {
	var (
		mu     sync.Mutex
		failed = map[txn.TopicPartition]error{}
		wg     sync.WaitGroup
	)
	fail := func(tp txn.TopicPartition, err error) {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return
		}
		mu.Lock()
		failed[tp] = err
		mu.Unlock()
	}
	self := s.cluster.NodeID()
	remote := map[int32][]txn.TopicPartition{}
	for _, tp := range partitions {
		topic, ok := s.cluster.Topic(tp.Topic)
		if !ok || tp.Partition < 0 || tp.Partition >= topic.PartitionCount() {
			continue
		}
		switch leader, _ := topic.Partition(tp.Partition).Leader(); {
		case leader < 0:
			fail(tp, fmt.Errorf("%s-%d has no leader: %w", tp.Topic, tp.Partition, kerr.NotLeaderForPartition))
		case leader == self:
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.writeTxnMarker(ctx, tp.Topic, tp.Partition, m); err != nil {
					fail(tp, err)
				}
			}()
		default:
			remote[leader] = append(remote[leader], tp)
		}
	}
	for leader, tps := range remote {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tp, err := range s.sendTxnMarkers(ctx, leader, m, tps) {
				fail(tp, err)
			}
		}()
	}
	wg.Wait()
	if len(failed) == 0 {
		return nil
	}
	return failed
}

// sendTxnMarkers asks node leader to write marker m on partitions
// (WriteTxnMarkers) and returns those it did not write.
func (s *Server) sendTxnMarkers(ctx context.Context, leader int32, m partition.TxnMarker, partitions []txn.TopicPartition) map[txn.TopicPartition]error {
	failAll := func(err error) map[txn.TopicPartition]error {
		out := make(map[txn.TopicPartition]error, len(partitions))
		for _, tp := range partitions {
			out[tp] = err
		}
		return out
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	marker := kmsg.NewWriteTxnMarkersRequestMarker()
	marker.ProducerID, marker.ProducerEpoch, marker.Committed, marker.CoordinatorEpoch = m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch
	for _, tp := range partitions {
		if n := len(marker.Topics); n == 0 || marker.Topics[n-1].Topic != tp.Topic {
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = tp.Topic
			marker.Topics = append(marker.Topics, t)
		}
		t := &marker.Topics[len(marker.Topics)-1]
		t.Partitions = append(t.Partitions, tp.Partition)
	}
	req.Markers = append(req.Markers, marker)
	cl, err := s.forwarder.kafkaClient(s.cluster.NodeID(), s.cluster.Brokers())
	if err != nil {
		return failAll(err)
	}
	kresp, err := cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return failAll(fmt.Errorf("send WriteTxnMarkers to node %d: %w", leader, err))
	}
	resp := kresp.(*kmsg.WriteTxnMarkersResponse)
	out := map[txn.TopicPartition]error{}
	answered := map[txn.TopicPartition]bool{}
	for _, rm := range resp.Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				tp := txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
				answered[tp] = true
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					out[tp] = fmt.Errorf("node %d: %w", leader, err)
				}
			}
		}
	}
	for _, tp := range partitions {
		if !answered[tp] {
			out[tp] = fmt.Errorf("node %d did not answer for %s-%d: %w", leader, tp.Topic, tp.Partition, kerr.UnknownServerError)
		}
	}
	return out
}
