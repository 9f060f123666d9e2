package txn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition/record"
)

// Records in __transaction_state use Kafka's formats (kmsg has them), so
// tools reading the topic understand Sluice's too:
//
//	key    TxnMetadataKey v0    (transactional id)
//	value  TxnMetadataValue v0  (producer id, epoch, timeout, state,
//	                             partitions by topic, last update time,
//	                             transaction start time or -1)
//	       TxnMetadataValue v1  (v0, flexible, with tagged fields:
//	                             PreviousProducerID, NextProducerID,
//	                             NextProducerEpoch, ClientTransactionVersion)
//
// v1 is written only for a transaction ended by an EndTxn of transaction
// version 2 (ClientTransactionVersion 2: its epoch was bumped by the end,
// see metadata.endBumped), and carries the producer id rotation of an
// exhausted epoch; every other record is v0, as before.
//
// A null value is a tombstone: the transactional id expired.

// errUndecodable reports a record of __transaction_state that is not a
// transaction record Sluice understands; a load skips it.
var errUndecodable = errors.New("txn: undecodable record")

func metadataKey(id string) []byte {
	k := kmsg.NewTxnMetadataKey()
	k.Version, k.TransactionalID = 0, id
	return k.AppendTo(nil)
}

func metadataValue(m *metadata) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = 0
	if m.endBumped {
		v.Version = 1
		v.ClientTransactionVersion = 2
		v.PreviousProducerID, v.NextProducerID, v.NextProducerEpoch = m.lastProducerID, m.nextProducerID, -1
		if m.nextProducerID >= 0 {
			v.NextProducerEpoch = 0
		}
	}
	v.ProducerID, v.ProducerEpoch = m.producerID, m.producerEpoch
	v.TimeoutMillis = int32(m.timeout / time.Millisecond)
	v.State = m.state
	byTopic := map[string]int{}
	for _, tp := range m.sortedPartitions() {
		i, ok := byTopic[tp.Topic]
		if !ok {
			i = len(v.Topics)
			byTopic[tp.Topic] = i
			t := kmsg.NewTxnMetadataValueTopic()
			t.Topic = tp.Topic
			v.Topics = append(v.Topics, t)
		}
		v.Topics[i].Partitions = append(v.Topics[i].Partitions, tp.Partition)
	}
	v.LastUpdateTimestamp = m.lastUpdate.UnixMilli()
	v.StartTimestamp = m.startMillis()
	return v.AppendTo(nil)
}

// decodeRecord decodes one record of __transaction_state: the
// transactional id and its metadata, nil for a tombstone.
func decodeRecord(key, value []byte) (string, *metadata, error) {
	if len(key) < 2 || binary.BigEndian.Uint16(key) != 0 {
		return "", nil, errUndecodable
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return "", nil, fmt.Errorf("%w: key: %w", errUndecodable, err)
	}
	if value == nil {
		return k.TransactionalID, nil, nil
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return "", nil, fmt.Errorf("%w: value of %q: %w", errUndecodable, k.TransactionalID, err)
	}
	m := &metadata{
		id:                k.TransactionalID,
		producerID:        v.ProducerID,
		producerEpoch:     v.ProducerEpoch,
		lastProducerID:    -1,
		lastProducerEpoch: -1,
		nextProducerID:    -1,
		timeout:           time.Duration(v.TimeoutMillis) * time.Millisecond,
		state:             v.State,
		partitions:        map[TopicPartition]struct{}{},
		lastUpdate:        time.UnixMilli(v.LastUpdateTimestamp),
	}
	if v.StartTimestamp >= 0 {
		m.startTime = time.UnixMilli(v.StartTimestamp)
	}
	if v.Version >= 1 && v.ClientTransactionVersion >= 2 && (preparing(v.State) || completes(v.State)) {
		// Ended by a version 2 EndTxn: the epoch before its bump is
		// the one a retry carries (none after an overflow, whose retry
		// carries PreviousProducerID).
		m.endBumped = true
		m.lastProducerID, m.nextProducerID = v.PreviousProducerID, v.NextProducerID
		if m.producerEpoch > 0 {
			m.lastProducerEpoch = m.producerEpoch - 1
		}
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			m.partitions[TopicPartition{t.Topic, p}] = struct{}{}
		}
	}
	return k.TransactionalID, m, nil
}

// encodeRecord builds one uncompressed batch holding the record of m's
// state (a tombstone when m is Dead), stamped at now.
func encodeRecord(m *metadata, now time.Time) []byte {
	var value []byte
	if m.state != stateDead {
		value = metadataValue(m)
	}
	var b record.Builder
	b.Add(now.UnixMilli(), metadataKey(m.id), value)
	raw, err := b.AppendTo(nil)
	if err != nil {
		// Only an empty batch fails uncompressed: a bug.
		panic(fmt.Sprintf("txn: encode the record of %q: %v", m.id, err))
	}
	return raw
}
