package wire

// WriteTxnMarkers (key 27), versions 0-1.
//
// The transaction coordinator's request to a partition leader: for each
// marker (producer id and epoch, COMMIT or ABORT, coordinator epoch), write
// a transaction marker (a control batch) to every listed partition this
// node leads, ending the producer's ongoing transaction there, and answer
// once each is committed (writeTxnMarker, txn_marker.go). A marker on a
// __consumer_offsets partition also completes the producer's transactional
// offset commits in the group coordinator. It is advertised to clients too:
// kafka-transactions.sh abort sends it to abort a hanging transaction.
//
// Errors per partition: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER,
// INVALID_PRODUCER_EPOCH (an epoch below the producer's on the partition),
// TRANSACTION_COORDINATOR_FENCED (a coordinator epoch below that of the
// producer's last marker), REQUEST_TIMED_OUT when the marker is not
// committed within 30 s (Kafka's request.timeout.ms default; the request
// has no timeout of its own), and the partition's storage errors. The
// partitions are written concurrently.
//
// Deviations: no authorisation (Kafka requires ClusterAction).
//
// Version notes: v1 flexible. v2 (KIP-890, transaction version in each
// marker) is not served: transaction version 2 is not advertised.

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition"
)

// writeTxnMarkersTimeout bounds the wait for a marker's commit.
const writeTxnMarkersTimeout = 30 * time.Second

func handleWriteTxnMarkers(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	type write struct {
		marker, topic, partition int // indexes into the response
		name                     string
		index                    int32
		m                        partition.TxnMarker
	}
	var writes []write
	for _, rm := range req.Markers {
		sm := kmsg.NewWriteTxnMarkersResponseMarker()
		sm.ProducerID = rm.ProducerID
		m := partition.TxnMarker{
			ProducerID:       rm.ProducerID,
			ProducerEpoch:    rm.ProducerEpoch,
			Commit:           rm.Committed,
			CoordinatorEpoch: rm.CoordinatorEpoch,
		}
		for _, rt := range rm.Topics {
			st := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			st.Topic = rt.Topic
			for _, index := range rt.Partitions {
				sp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				sp.Partition = index
				writes = append(writes, write{len(resp.Markers), len(sm.Topics), len(st.Partitions), rt.Topic, index, m})
				st.Partitions = append(st.Partitions, sp)
			}
			sm.Topics = append(sm.Topics, st)
		}
		resp.Markers = append(resp.Markers, sm)
	}
	if len(writes) == 0 {
		return reply{resp: resp}
	}
	return reply{finish: func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, writeTxnMarkersTimeout)
		defer cancel()
		var wg sync.WaitGroup
		for _, w := range writes {
			sp := &resp.Markers[w.marker].Topics[w.topic].Partitions[w.partition]
			if w.m.ProducerID < 0 || w.m.ProducerEpoch < 0 {
				sp.ErrorCode = kerr.InvalidRequest.Code
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sp.ErrorCode = s.errorCode(s.writeTxnMarker(ctx, w.name, w.index, w.m))
			}()
		}
		wg.Wait()
		return resp
	}}
}
