package consumergroup

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
)

// A share group is stored in the __consumer_offsets partition of its id,
// as one record per change of its group epoch (members are not stored:
// after a failover they join again, as in Kafka 4.1):
//
//	key    int16  11 (Kafka's ShareGroupMetadataKey record type)
//	       string group id (int16 length, bytes)
//	value  int16  version (0)
//	       int32  group epoch
//	       int64  creation time (ms)
//	       int32  number of topics, then for each topic whose
//	              partitions were ever assigned in the group:
//	         [16]byte topic id
//	         string   topic name (int16 length, bytes)
//	         int32    partition count (the largest seen)
//
// The key is Kafka's; the value is Sluice's own (Kafka spreads the same
// facts over its ShareGroupMetadata and ShareGroupStatePartitionMetadata
// records). A null value is a tombstone: the group was deleted.

// shareGroupKeyType is the record type (key version) of a share group's
// record.
const shareGroupKeyType = 11

func shareGroupKey(group string) []byte {
	k := kbin.AppendInt16(nil, shareGroupKeyType)
	return kbin.AppendString(k, group)
}

func shareGroupValue(g *shareGroup) []byte {
	v := kbin.AppendInt16(nil, 0)
	v = kbin.AppendInt32(v, g.epoch)
	v = kbin.AppendInt64(v, g.createdAt.UnixMilli())
	v = kbin.AppendInt32(v, int32(len(g.topics)))
	for _, t := range sortedShareTopics(g.topics) {
		v = kbin.AppendUuid(v, t.id)
		v = kbin.AppendString(v, t.name)
		v = kbin.AppendInt32(v, t.partitions)
	}
	return v
}

// decodeShareGroupValue decodes a share group's record value into g.
func decodeShareGroupValue(g *shareGroup, value []byte) error {
	r := kbin.Reader{Src: value}
	if version := r.Int16(); version != 0 {
		return fmt.Errorf("share group value version %d is unknown", version)
	}
	epoch := r.Int32()
	created := r.Int64()
	n := r.Int32()
	if n < 0 || int(n) > len(value) {
		return fmt.Errorf("share group value: %d topics", n)
	}
	topics := make(map[[16]byte]shareTopic, n)
	for range n {
		t := shareTopic{id: r.Uuid(), name: r.String(), partitions: r.Int32()}
		topics[t.id] = t
	}
	if err := r.Complete(); err != nil {
		return fmt.Errorf("share group value: %w", err)
	}
	if len(r.Src) > 0 {
		return fmt.Errorf("share group value: %d bytes after the topics", len(r.Src))
	}
	g.epoch, g.topics, g.createdAt = epoch, topics, time.UnixMilli(created)
	return nil
}

// isShareGroupKey reports whether a __consumer_offsets key is a share
// group's.
func isShareGroupKey(key []byte) bool {
	return len(key) >= 2 && binary.BigEndian.Uint16(key) == shareGroupKeyType
}

// applyShareRecord applies a share group record to shares, a load's own
// map: a value (re)creates the group with its epoch and topics and no
// members, a tombstone deletes it.
func (c *Coordinator) applyShareRecord(shares map[string]*shareGroup, key, value []byte) {
	r := kbin.Reader{Src: key[2:]}
	id := r.String()
	if r.Complete() != nil {
		return
	}
	if value == nil {
		delete(shares, id)
		return
	}
	g := newShareGroup(id, time.Now())
	if err := decodeShareGroupValue(g, value); err != nil {
		c.logger.Warn("skipping undecodable share group record", zapGroup(id), zapErr(err))
		return
	}
	shares[id] = g
}

// persistShareGroupLocked appends the group's record if its epoch moved
// past startEpoch (or the group is new); a returned written with pending
// set is counted in c.wg until waitWritten. c.mu is held.
func (c *Coordinator) persistShareGroupLocked(g *shareGroup, startEpoch int32) (written, int16) {
	if g.epoch == startEpoch && g.stored {
		return written{}, 0
	}
	batch := encodeBatch([]kv{{key: shareGroupKey(g.id), value: shareGroupValue(g)}})
	w, err := c.appendLocked(c.partitionFor(g.id), batch)
	if err != nil {
		// The next heartbeat writes the record again.
		g.stored = false
		return written{}, storeErrorCode(err)
	}
	g.stored = true
	c.wg.Add(1)
	w.pending = true
	return w, 0
}

// shareTombstoneBatch is the batch deleting a share group.
func shareTombstoneBatch(group string) []byte {
	return encodeBatch([]kv{{key: shareGroupKey(group)}})
}

// sortedShareTopics returns topics sorted by name, then id.
func sortedShareTopics(topics map[[16]byte]shareTopic) []shareTopic {
	out := make([]shareTopic, 0, len(topics))
	for _, t := range topics {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b shareTopic) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return bytes.Compare(a.id[:], b.id[:])
	})
	return out
}
