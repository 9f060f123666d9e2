package wire

// DescribeProducers (key 61), versions 0-0.
//
// KIP-664. Lists, for each requested partition this node leads, the producers its
// state knows: producer id and epoch, last sequence and timestamp appended,
// the coordinator epoch of the last transaction marker written for it and
// the first offset of its ongoing transaction (-1 when none), as
// kafka-transactions.sh describe-producers and find-hanging read them.
//
// Errors per partition: UNKNOWN_TOPIC_OR_PARTITION,
// NOT_LEADER_OR_FOLLOWER (the client asks the leader).
//
// Deviations: producers are never expired (producer.id.expiration.ms is
// not applied), so every producer that ever wrote to the partition and
// whose state survived is listed. No authorisation (Kafka requires Read
// on the topic).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeProducers(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		topic, known := s.cluster.Topic(rt.Topic)
		for _, index := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = index
			err := describeProducers(&sp, topic, known, index)
			if err != nil {
				sp.ErrorCode, sp.ErrorMessage = s.errorCode(err), errorMessage(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return reply{resp: resp}
}

// describeProducers fills sp with the producers of partition index of
// topic (known false: no such topic).
func describeProducers(sp *kmsg.DescribeProducersResponseTopicPartition, topic Topic, known bool, index int32) error {
	if !known || index < 0 || index >= topic.PartitionCount() {
		return kerr.UnknownTopicOrPartition
	}
	producers, err := topic.Partition(index).Producers()
	if err != nil {
		return err
	}
	for _, p := range producers {
		ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
		ap.ProducerID = p.ProducerID
		ap.ProducerEpoch = int32(p.ProducerEpoch)
		ap.LastSequence = p.LastSequence
		ap.LastTimestamp = p.LastTimestamp
		ap.CoordinatorEpoch = p.CoordinatorEpoch
		ap.CurrentTxnStartOffset = p.CurrentTxnStartOffset
		sp.ActiveProducers = append(sp.ActiveProducers, ap)
	}
	return nil
}
