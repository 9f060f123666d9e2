package consumergroup

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/partition/record"
)

// attributeTransactional is bit 4 of a batch's attributes: the batch
// belongs to its producer's ongoing transaction.
const attributeTransactional = 0x10

// TxnOffsetCommit stores offsets committed inside a transaction (KIP-98):
// the records are appended as a transactional batch of the request's
// producer, so they join its transaction on the group's __consumer_offsets
// partition, and the offsets stay pending (invisible to OffsetFetch and
// DescribeGroups, UNSTABLE_OFFSET_COMMIT to a RequireStable fetch) until
// the transaction's marker there completes them (CompleteTransaction).
//
// From v3 a request naming a member or generation is checked like a
// member's OffsetCommit (KIP-447: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
// ILLEGAL_GENERATION); without them, as v0-v2 always are, any group may be
// committed to, and a group that does not exist is created empty, as in
// Kafka. A stale producer epoch is the partition's refusal
// (INVALID_PRODUCER_EPOCH). It answers once the records are durable.
//
// guard is the verification guard of the group's partition for the
// producer (KIP-890): the caller has its leader hand it out
// (StartTxnVerification; 0 when the producer's transaction is under way
// there already), then has the transaction coordinator confirm that the
// partition is in the producer's ongoing transaction, before calling. If
// the transaction ended meanwhile (its marker ended the guard), the
// records would begin a transaction no marker ends: the partition refuses
// them, nothing is stored or left pending, and the answer is
// INVALID_TXN_STATE.
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest, guard uint64) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	setAll := func(code int16) *kmsg.TxnOffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].ErrorCode == 0 {
					resp.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
		return resp
	}
	if req.ProducerID < 0 || req.ProducerEpoch < 0 {
		return setAll(kerr.InvalidProducerIDMapping.Code)
	}
	if code := c.lockGroupRequest(req.Group); code != 0 {
		return setAll(code)
	}
	if c.shareGroups[req.Group] != nil {
		c.mu.Unlock()
		return setAll(kerr.GroupIDNotFound.Code)
	}
	g := c.groups[req.Group]
	memberID, instanceID, generation := "", (*string)(nil), int32(-1)
	if req.Version >= 3 {
		memberID, instanceID, generation = req.MemberID, req.InstanceID, req.Generation
	}
	var code int16
	switch {
	case g != nil && g.state == stateDead:
		code = kerr.CoordinatorNotAvailable.Code
	case generation >= 0 || memberID != "" || instanceID != nil:
		// Kafka's validateOffsetCommit for a transactional commit: a
		// member (or a generation) is checked, without the rebalance
		// check of OffsetCommit.
		code = c.checkMemberLocked(g, memberID, instanceID, generation)
	}
	if code != 0 {
		c.mu.Unlock()
		return setAll(code)
	}
	created := g == nil
	if created {
		g = newGroup(req.Group, time.Now())
		c.groups[req.Group] = g
	}
	if m := g.members[memberID]; m != nil {
		c.armSession(g, m)
	}
	now := time.Now().UnixMilli()
	var records []kv
	type slot struct{ topic, partition int }
	var slots []slot
	var values []committed
	var tps []topicPartition
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			sp := &resp.Topics[i].Partitions[j]
			tp := topicPartition{rt.Topic, rp.Partition}
			if rp.Metadata != nil && len(*rp.Metadata) > maxOffsetMetadataBytes {
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			if !c.knownPartition(tp) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			o := committed{offset: rp.Offset, leaderEpoch: -1, commitTimestamp: now}
			if req.Version >= 2 {
				o.leaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				o.metadata = *rp.Metadata
			}
			records = append(records, kv{key: offsetKey(g.id, tp), value: offsetValue(o)})
			slots, values, tps = append(slots, slot{i, j}), append(values, o), append(tps, tp)
		}
	}
	if len(records) == 0 {
		c.mu.Unlock()
		return resp
	}
	fail := func(err error) *kmsg.TxnOffsetCommitResponse {
		code := storeErrorCode(err)
		for _, s := range slots {
			resp.Topics[s.topic].Partitions[s.partition].ErrorCode = code
		}
		return resp
	}
	batch := encodeTxnBatch(records, req.ProducerID, req.ProducerEpoch)
	w, err := c.appendTxnLocked(c.partitionFor(g.id), batch, guard)
	if err != nil {
		// Refused (a late commit whose transaction ended, a stale
		// epoch, leadership moved): nothing was stored, so nothing
		// is pending, and a group created for it does not appear.
		c.dropIfUnusedLocked(g, created)
		c.mu.Unlock()
		return fail(err)
	}
	// Pending from the append on, whether or not the wait below succeeds:
	// the records are in the log ahead of any marker that completes them,
	// and a reload would find them pending too.
	for i, tp := range tps {
		values[i].logOffset = w.base + int64(i)
		g.addTxnOffsetLocked(req.ProducerID, tp, values[i])
	}
	c.wg.Add(1)
	c.mu.Unlock()
	err = w.wait(ctx)
	c.wg.Done()
	if err != nil {
		return fail(err)
	}
	return resp
}

// dropIfUnusedLocked forgets group g, created by the TxnOffsetCommit
// under way (created), if that commit stored nothing in it: no group
// without a member or an offset is left behind by a refused commit.
func (c *Coordinator) dropIfUnusedLocked(g *group, created bool) {
	if created && len(g.members) == 0 && len(g.offsets) == 0 && len(g.txnOffsets) == 0 && len(g.pendingCommits) == 0 && c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
}

// CompleteTransaction applies the transaction marker of producer
// producerID just committed in __consumer_offsets partition index: the
// producer's pending offsets in the groups of that partition become
// committed (commit), unless a later commit of the same partition is in the
// log already, or are dropped (abort). The producer epoch is not compared:
// a marker ends whatever the producer had pending there, as in Kafka.
//
// A partition whose groups are being loaded notes the completion and
// applies it once the load installs its groups (the load may have read
// the marker already; applying it twice changes nothing, since a producer
// has nothing pending after its marker until this node appends for it
// again, which it does only once loaded). A partition not loaded here
// ignores it: the marker is in the log, and a load reads it.
func (c *Coordinator) CompleteTransaction(index int32, producerID int64, producerEpoch int16, commit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || index < 0 || int(index) >= len(c.owned) {
		return
	}
	o := &c.owned[index]
	if o.Loading() {
		o.completions = append(o.completions, txnCompletion{producerID: producerID, commit: commit})
		return
	}
	if _, loaded := o.Loaded(); !loaded {
		return
	}
	n := c.completeTxnLocked(c.groups, index, producerID, commit)
	c.logger.Debug("transactional offsets completed", zap.Int32("partition", index), zap.Int64("producer-id", producerID),
		zap.Int16("producer-epoch", producerEpoch), zap.Bool("commit", commit), zap.Int("groups", n))
}

// txnCompletion is a marker that arrived while its partition was loading.
type txnCompletion struct {
	producerID int64
	commit     bool
}

// completeTxnLocked completes producerID's pending offsets in the groups
// of partition index among groups (the coordinator's, under c.mu, or a
// load's own) and returns how many groups had some.
func (c *Coordinator) completeTxnLocked(groups map[string]*group, index int32, producerID int64, commit bool) int {
	n := 0
	for id, g := range groups {
		if _, ok := g.txnOffsets[producerID]; !ok || c.partitionFor(id) != index {
			continue
		}
		g.completeTxnLocked(producerID, commit)
		n++
	}
	return n
}

// appendTxnLocked is appendLocked for a transactional batch verified
// with guard (Partition.AppendAsCoordinatorVerified): the same leadership
// checks, under c.mu.
func (c *Coordinator) appendTxnLocked(p int32, batch []byte, guard uint64) (written, error) {
	part := c.handle(p)
	epoch, loaded := c.ownedEpochLocked(p)
	if part == nil || !loaded {
		return written{}, kerr.NotCoordinator
	}
	if node, now := part.Leader(); node != c.self || now != epoch {
		return written{}, kerr.NotCoordinator
	}
	res, err := part.AppendAsCoordinatorVerified(context.Background(), batch, guard)
	if err != nil {
		return written{}, fmt.Errorf("append transactional offsets to %s-%d: %w", OffsetsTopic, p, err)
	}
	return written{appended: res, base: res.BaseOffset, last: res.LastOffset}, nil
}

// encodeTxnBatch builds one uncompressed magic-2 transactional batch of
// producer id and epoch, as Kafka's coordinator writes TxnOffsetCommit
// records: attribute bit 4 set, base sequence -1 (the coordinator's
// records carry no sequence numbers).
func encodeTxnBatch(records []kv, producerID int64, producerEpoch int16) []byte {
	now := time.Now().UnixMilli()
	var section []byte
	for i, r := range records {
		rec := record.Record{OffsetDelta: int32(i), Key: r.key, Value: r.value}
		section = record.AppendRecord(section, &rec)
	}
	h := log.BatchHeader{
		PartitionLeaderEpoch: -1,
		Attributes:           attributeTransactional,
		LastOffsetDelta:      int32(len(records) - 1),
		BaseTimestamp:        now,
		MaxTimestamp:         now,
		ProducerID:           producerID,
		ProducerEpoch:        producerEpoch,
		BaseSequence:         -1,
		RecordCount:          int32(len(records)),
	}
	return log.AppendBatch(nil, h, section)
}

// addTxnOffsetLocked records an offset committed in producerID's ongoing
// transaction, pending until its marker.
func (g *group) addTxnOffsetLocked(producerID int64, tp topicPartition, o committed) {
	pending := g.txnOffsets[producerID]
	if pending == nil {
		pending = make(map[topicPartition]committed)
		g.txnOffsets[producerID] = pending
	}
	if old, ok := pending[tp]; ok && old.logOffset > o.logOffset {
		return
	}
	pending[tp] = o
}

// completeTxnLocked ends producerID's pending offsets: committed ones
// replace the group's unless a later record of the partition was applied
// (applyCommitLocked compares log offsets), aborted ones vanish.
func (g *group) completeTxnLocked(producerID int64, commit bool) {
	pending := g.txnOffsets[producerID]
	delete(g.txnOffsets, producerID)
	if !commit {
		return
	}
	for tp, o := range pending {
		g.applyCommitLocked(tp, o)
	}
}

// dropTxnOffsetsLocked forgets every pending transactional offset of tp
// (its committed offset is being deleted: a later marker must not bring it
// back).
func (g *group) dropTxnOffsetsLocked(tp topicPartition) {
	for pid, pending := range g.txnOffsets {
		delete(pending, tp)
		if len(pending) == 0 {
			delete(g.txnOffsets, pid)
		}
	}
}

// unstableLocked reports whether tp has a commit that is not yet visible:
// pending in an open transaction, or an OffsetCommit still being written
// (KIP-447's UNSTABLE_OFFSET_COMMIT for a RequireStable fetch).
func (g *group) unstableLocked(tp topicPartition) bool {
	return g.pendingCommits[tp] > 0 || g.hasTxnOffsetLocked(tp)
}

// hasTxnOffsetLocked reports whether tp has an offset pending in some open
// transaction.
func (g *group) hasTxnOffsetLocked(tp topicPartition) bool {
	for _, pending := range g.txnOffsets {
		if _, ok := pending[tp]; ok {
			return true
		}
	}
	return false
}
