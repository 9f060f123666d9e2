package wire

// Produce (key 0), versions 0-13.
//
// Appends each partition's record batches (magic 2, stored as produced,
// compressed or not) and answers with the base offset. Appends run on the
// connection's reader goroutine in request order, so pipelined requests
// from one producer land in order; the wait for durability (acks=1 and
// acks=all both wait for the fsync on a single node) runs on the writer
// goroutine, overlapping with the next requests.
//
// acks=0 gets no response; if any partition failed, the connection is
// closed, as Kafka does, so the producer notices and refreshes metadata.
// acks other than -1, 0, 1 is INVALID_REQUIRED_ACKS. Produce never creates
// topics (Metadata does). Transactional batches (attribute bit 4) are
// appended with the idempotent checks and start or continue their
// producer's transaction on the partition (package partition); a control
// batch from a client is INVALID_RECORD, as Kafka answers; transactional
// batches in a request without a transactional id are
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka answers.
//
// A transactional produce (a transactional id) before v12 to a partition
// that is not in the producer's ongoing transaction is refused before the
// append, with nothing stored: INVALID_TXN_STATE, or
// INVALID_PRODUCER_EPOCH for a stale epoch, as the transaction
// coordinator says (txn_verify.go, KIP-890 part 1); from v12 (transaction
// version 2, KIP-890 part 2) the partition is added to the producer's
// transaction at the coordinator instead, starting the transaction if
// none is under way, with the same refusals for a stale epoch or an
// unknown producer; NOT_ENOUGH_REPLICAS, retried by clients, while the
// coordinator cannot answer. Without a transaction coordinator it is
// refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
//
// acks=all to a partition with fewer in-sync replicas than the topic's
// min.insync.replicas is NOT_ENOUGH_REPLICAS, answered before the append
// (nothing is stored); acks=1 and acks=0 are not refused. A partition this
// node does not lead is NOT_LEADER_OR_FOLLOWER, from v10 with the current
// leader and its epoch (CurrentLeader) and that broker's address
// (NodeEndpoints) when this node knows them (KIP-951).
//
// Versions 0-2 carry message sets (message format v0/v1, magic 0 and 1):
// each partition's set is up-converted to one magic-2 batch before the
// append (message_set.go), so storage holds v2 batches only. Every message
// CRC is checked (CORRUPT_MESSAGE); compressed wrappers are decompressed
// and flattened, and the batch is compressed again with the wrapper's
// codec. zstd wrappers are UNSUPPORTED_COMPRESSION_TYPE.
//
// Deviations: magic 0 messages, which have no timestamp, get the broker's
// time as a CreateTime timestamp (Kafka stores no timestamp, -1). Either
// magic is accepted at every version 0-2 (Kafka clients send magic 0 at
// v0-1 and magic 1 at v2). Inner messages of a LogAppendTime wrapper take
// the wrapper's timestamp, as Kafka reads them; the stored batch is
// CreateTime unless the topic says LogAppendTime. lz4 wrappers of magic 0
// with the frame header checksum Kafka 0.8-0.9 computed wrongly are
// repaired and accepted.
//
// Version notes: v0 no timestamps (message format v0); v1 throttle time;
// v2 message format v1 (KIP-32) and LogAppendTime in the response; v3
// requires magic 2 (KIP-98); v5 adds log start offset;
// v8 per-record errors (KIP-467); v9 flexible; v10 current leader in
// NOT_LEADER errors (KIP-951); v11 same as v10; v12 (KIP-890 part 2)
// implicit AddPartitionsToTxn for transactional produces; v13 topic ids instead of names (KIP-516).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/replication"
)

func handleProduce(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	var (
		failed bool
		// waits lists the appended partitions whose durability the
		// response waits for.
		waits []produceWait
		// leaders are the nodes named as CurrentLeader (v10+).
		leaders []int32
	)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var topic Topic
		var topicErr error
		if req.Version >= 13 {
			var ok bool
			if topic, ok = s.cluster.TopicByID(rt.TopicID); !ok {
				topicErr = kerr.UnknownTopicID
			}
		} else {
			var ok bool
			if topic, ok = s.cluster.Topic(rt.Topic); !ok {
				topicErr = kerr.UnknownTopicOrPartition
			}
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			err := topicErr
			switch {
			case err != nil:
			case req.Acks != -1 && req.Acks != 0 && req.Acks != 1:
				err = kerr.InvalidRequiredAcks
			case req.TransactionID != nil && s.txns == nil:
				err = kerr.TransactionalIDAuthorizationFailed
			case req.TransactionID == nil && req.Version >= 3 && hasTransactionalBatch(rp.Records):
				// As Kafka: transactional records need a transactional id.
				err = kerr.TransactionalIDAuthorizationFailed
			case rp.Partition < 0 || rp.Partition >= topic.PartitionCount():
				err = kerr.UnknownTopicOrPartition
			case len(rp.Records) == 0:
				err = kerr.CorruptMessage
			}
			records := rp.Records
			if err == nil && req.Version < 3 {
				records, err = convertMessageSet(records, time.Now().UnixMilli())
			}
			if err == nil && req.Acks == -1 {
				err = checkMinInSync(topic.Partition(rp.Partition))
			}
			var (
				guard    uint64
				verified bool
			)
			if err == nil && req.TransactionID != nil {
				if p := topic.Partition(rp.Partition); leads(p, s.cluster.NodeID()) {
					guard, verified, err = s.verifyTxnProduce(ctx, req.Version >= 12, *req.TransactionID, topic.Name(), rp.Partition, p, records)
				}
			}
			if err == nil {
				p := topic.Partition(rp.Partition)
				var (
					res  replication.Appended
					aerr error
				)
				if verified {
					res, aerr = p.AppendVerified(ctx, records, guard)
				} else {
					res, aerr = p.Append(ctx, records)
				}
				if aerr != nil {
					err = aerr
					sp.ErrorCode = s.errorCode(aerr)
					leaders = setProduceLeader(&sp, leaders, req.Version, p, sp.ErrorCode)
				} else {
					sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
					if s.observer != nil && !res.Duplicate {
						s.observer.Produced(topic.Name(), int64(len(records)), res.LastOffset-res.BaseOffset+1)
					}
					waits = append(waits, produceWait{topic: len(resp.Topics), partition: len(st.Partitions), appended: res, p: p})
				}
			}
			if err != nil {
				failed = true
				if sp.ErrorCode == 0 {
					sp.ErrorCode = s.errorCode(err)
				}
				sp.ErrorMessage = errorMessage(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}

	if req.Acks == 0 {
		return reply{none: true, closeConn: failed}
	}
	if len(waits) == 0 {
		resp.Brokers = produceEndpoints(s.endpoints(leaders))
		return reply{resp: resp}
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	return reply{finish: func(ctx context.Context) kmsg.Response {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		for _, w := range waits {
			if err := w.appended.Wait(ctx); err != nil {
				sp := &resp.Topics[w.topic].Partitions[w.partition]
				sp.ErrorCode, sp.ErrorMessage = s.errorCode(err), errorMessage(err)
				sp.BaseOffset = -1
				leaders = setProduceLeader(sp, leaders, req.Version, w.p, sp.ErrorCode)
			}
		}
		resp.Brokers = produceEndpoints(s.endpoints(leaders))
		return resp
	}}
}

// leads reports whether node self leads p: only the leader verifies a
// transactional produce (elsewhere the append answers
// NOT_LEADER_OR_FOLLOWER).
func leads(p Partition, self int32) bool {
	node, _ := p.Leader()
	return node == self
}

// hasTransactionalBatch reports whether any v2 batch of records has the
// transactional attribute. It reads only the headers' length and
// attributes and stops at the first malformed one (the append refuses
// it).
func hasTransactionalBatch(records []byte) bool {
	for pos := 0; len(records)-pos >= log.BatchHeaderSize; {
		h, err := log.ParseBatchHeader(records[pos:])
		if err != nil || h.Size() < log.BatchHeaderSize {
			return false
		}
		if h.Transactional() {
			return true
		}
		pos += h.Size()
	}
	return false
}

// produceWait is one appended partition whose response waits for commit.
type produceWait struct {
	topic, partition int // indexes into the response
	appended         replication.Appended
	p                Partition
}

// setProduceLeader names, from v10 (KIP-951), p's current leader in sp
// when code is NOT_LEADER_OR_FOLLOWER, and returns leaders with it added.
func setProduceLeader(sp *kmsg.ProduceResponseTopicPartition, leaders []int32, version int16, p Partition, code int16) []int32 {
	if version < 10 {
		return leaders
	}
	node, epoch, ok := currentLeader(p, code)
	if !ok {
		return leaders
	}
	sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = node, epoch
	return append(leaders, node)
}

// produceEndpoints converts brokers to Produce's NodeEndpoints.
func produceEndpoints(brokers []replication.Broker) []kmsg.ProduceResponseBroker {
	if len(brokers) == 0 {
		return nil
	}
	out := make([]kmsg.ProduceResponseBroker, len(brokers))
	for i, b := range brokers {
		out[i] = kmsg.ProduceResponseBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack}
	}
	return out
}
