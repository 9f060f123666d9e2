package wire

// ShareFetch (key 78), versions 1-2.
//
// KIP-932, KIP-1206, KIP-1222.
//
// Delivers records of share groups: each partition of the member's share
// session acquires, on this node as the partition's leader, its next
// available records for the member (consumergroup/share), locked for the
// group's share.record.lock.duration.ms (AcquisitionLockTimeoutMillis).
// The response carries the stored batches covering the acquired offsets
// and, in AcquiredRecords, the acquired runs with their delivery counts;
// the consumer keeps only those records. MaxRecords bounds the records
// acquired per request (500 when 0), the batch reaching it acquired
// whole; MaxBytes and PartitionMaxBytes bound the bytes read, the first
// batch always read (KIP-74).
//
// Sessions: epoch 0 opens the member's share session with the request's
// partitions (replacing an older one, whose records are released), tied
// to the connection: when it closes, the session closes and the member's
// acquired records are released (as Kafka does; franz-go relies on it), a
// positive epoch must follow the previous request's and adds Topics and
// removes ForgottenTopicsData, -1 applies the acknowledgements, closes the
// session and releases the member's acquired records. Errors (top level):
// SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH,
// SHARE_SESSION_LIMIT_REACHED, INVALID_REQUEST (no group or member id,
// acknowledgements on epoch 0, a renew request with fetch parameters).
//
// Acknowledgements piggybacked in AcknowledgementBatches are applied (and
// persisted at the share coordinator) before records are acquired; each
// partition's outcome is in AcknowledgeErrorCode, every acknowledged
// partition is in the response. With IsRenewAck (v2, KIP-1222) the
// request only acknowledges (renew type 4 allowed) and acquires nothing.
//
// Long poll: with nothing acquired and MaxWaitMillis > 0, the response
// waits for appends to a session partition or records of the group
// released, as Fetch waits for appends; never polling. When a
// share-partition's lock window is full and the member holds records in
// it, the wait is at most 20 ms (shareHoldingWait): the member's client
// holds its acknowledgements until this response.
//
// Membership is not checked, as in Kafka: the group coordinator may be
// another node, and an unknown member only gets records no one holds.
//
// Per partition errors: UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION,
// NOT_LEADER_OR_FOLLOWER with CurrentLeader and NodeEndpoints.
//
// ShareAcquireMode 1 (record-limit, v2, KIP-1206) acquires at most
// MaxRecords even within a batch; mode 0 acquires whole batches.
//
// Deviations: BatchSize is not used to split the acquired runs.
// Records are read onto the heap, not the pooled fetch buffers. The
// records' bytes are charged to consumer_byte_rate quotas as a Fetch's
// are, but a throttled response keeps its records (chargeQuota). Version 0 (Kafka 4.0 early
// access) is not served: franz-go needs v2.
//
// Version notes: v1 MaxRecords, BatchSize, AcquisitionLockTimeoutMillis
// (KIP-1206); v2 ShareAcquireMode, IsRenewAck (KIP-1222).

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/share"
	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/quota"
)

// shareHoldingWait bounds the long poll of a ShareFetch that acquired
// nothing because a share-partition's lock window
// (group.share.partition.max.record.locks) is full and the member holds
// records in it: clients send acknowledgements with their next ShareFetch
// (franz-go caps MaxWait at 500 ms then, and sends them alone only after
// 1 s), so waiting the whole MaxWait would keep the window shut on the
// member's own acknowledgements, stalling every member of the group.
// Long enough that a member processing slowly polls at most 50 times a
// second; short next to the lock duration.
const shareHoldingWait = 20 * time.Millisecond

// defaultShareMaxRecords is what a ShareFetch with MaxRecords 0
// acquires at most (Kafka's share.max.fetch.records default).
const defaultShareMaxRecords = 500

func handleShareFetch(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ShareFetchRequest)
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
	fail := func(err *kerr.Error) reply {
		resp.ErrorCode = err.Code
		return reply{resp: resp}
	}
	var group, member string
	if req.GroupID != nil {
		group = *req.GroupID
	}
	if req.MemberID != nil {
		member = *req.MemberID
	}
	if group == "" || member == "" || len(member) > maxShareMemberIDLength {
		return fail(kerr.InvalidRequest)
	}
	resp.AcquisitionLockTimeoutMillis = int32(min(s.shares.LockDuration(group).Milliseconds(), math.MaxInt32))
	renew := req.Version >= 2 && req.IsRenewAck
	var add []share.TopicPartition
	var acks []shareAcks
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			tp := share.TopicPartition{TopicID: rt.TopicID, Partition: rp.Partition}
			add = append(add, tp)
			if len(rp.AcknowledgementBatches) > 0 {
				acks = append(acks, shareAcks{tp: tp, batches: shareAckBatches(rp.AcknowledgementBatches, func(b *kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch) (int64, int64, []int8) {
					return b.FirstOffset, b.LastOffset, b.AcknowledgeTypes
				})})
			} else if renew {
				return fail(kerr.InvalidRequest)
			}
		}
	}
	if renew && (req.MaxBytes != 0 || req.MinBytes != 0 || req.MaxRecords != 0 || req.MaxWaitMillis != 0) {
		return fail(kerr.InvalidRequest)
	}
	if req.ShareSessionEpoch == 0 && len(acks) > 0 {
		return fail(kerr.InvalidRequest)
	}
	var forget []share.TopicPartition
	for _, ft := range req.ForgottenTopicsData {
		for _, p := range ft.Partitions {
			forget = append(forget, share.TopicPartition{TopicID: ft.TopicID, Partition: p})
		}
	}
	// The session changes now, on the reader, in request order; the
	// acknowledgements, acquisition and wait happen in finish.
	key := share.SessionKey{Group: group, Member: member}
	sf := &shareFetch{s: s, req: req, resp: resp, group: group, member: member, acks: acks, renew: renew}
	if req.ShareSessionEpoch == -1 {
		parts, err := s.shares.Sessions().Close(key)
		if err != nil {
			return fail(kerr.ShareSessionNotFound)
		}
		sf.closed = parts
	} else {
		conn := requestClientFrom(ctx).conn
		var owner any
		if conn != nil {
			owner = conn
		}
		parts, replaced, err := s.shares.Sessions().Fetch(key, owner, req.ShareSessionEpoch, add, forget)
		var ke *kerr.Error
		if errors.As(err, &ke) {
			return fail(ke)
		}
		if req.ShareSessionEpoch == 0 && conn != nil {
			conn.trackShareSession(key)
		}
		sf.parts, sf.replaced = parts, replaced
	}
	return reply{finish: sf.run}
}

// shareAcks are one partition's acknowledgements.
type shareAcks struct {
	tp      share.TopicPartition
	batches []share.AckBatch
}

// shareFetch is one ShareFetch being answered.
type shareFetch struct {
	s      *Server
	req    *kmsg.ShareFetchRequest
	resp   *kmsg.ShareFetchResponse
	group  string
	member string
	acks   []shareAcks
	renew  bool
	// parts are the session's partitions to acquire from; closed, for
	// epoch -1, the closed session's; replaced those of a session an
	// epoch 0 replaced.
	parts, closed, replaced []share.TopicPartition
}

// run acknowledges, acquires (waiting up to MaxWait for records) and
// returns the response.
func (f *shareFetch) run(ctx context.Context) kmsg.Response {
	s := f.s
	if len(f.replaced) > 0 {
		s.releaseShare(ctx, f.group, f.member, f.replaced)
	}
	entries := make(map[share.TopicPartition]*kmsg.ShareFetchResponseTopicPartition)
	var order []share.TopicPartition
	entry := func(tp share.TopicPartition) *kmsg.ShareFetchResponseTopicPartition {
		if e := entries[tp]; e != nil {
			return e
		}
		e := &kmsg.ShareFetchResponseTopicPartition{Partition: tp.Partition}
		e.Default()
		e.CurrentLeader.LeaderID, e.CurrentLeader.LeaderEpoch = -1, -1
		entries[tp] = e
		order = append(order, tp)
		return e
	}
	var leaders []int32
	for _, a := range f.acks {
		r := s.acknowledgeShare(ctx, f.group, f.member, a.tp, a.batches, f.renew)
		e := entry(a.tp)
		e.AcknowledgeErrorCode = s.errorCode(r.err)
	}
	if f.closed != nil {
		s.releaseShare(ctx, f.group, f.member, f.closed)
	}
	if !f.renew && f.closed == nil {
		leaders = f.acquire(ctx, entry)
	}
	for _, tp := range order {
		e := entries[tp]
		if e.Records == nil {
			e.Records = []byte{}
		}
		i := len(f.resp.Topics) - 1
		if i < 0 || f.resp.Topics[i].TopicID != tp.TopicID {
			t := kmsg.NewShareFetchResponseTopic()
			t.TopicID = tp.TopicID
			f.resp.Topics = append(f.resp.Topics, t)
			i++
		}
		f.resp.Topics[i].Partitions = append(f.resp.Topics[i].Partitions, *e)
	}
	for _, b := range s.endpoints(leaders) {
		f.resp.NodeEndpoints = append(f.resp.NodeEndpoints, kmsg.ShareFetchResponseNodeEndpoint{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	f.chargeQuota(ctx)
	return f.resp
}

// chargeQuota charges the response's record bytes to the client's
// consumer_byte_rate quota, as a Fetch's are. Over it the response keeps
// its records: they are acquired, and withheld they would stay locked
// from everyone for the lock duration and come back with a delivery
// counted. The response says how long the client is throttled and the
// connection is muted for that long, so the client's next requests wait
// instead (KIP-219's throttling, without the dropped data).
func (f *shareFetch) chargeQuota(ctx context.Context) {
	set := f.s.cluster.ClientQuotas()
	if len(set) == 0 {
		return
	}
	n := 0
	for _, t := range f.resp.Topics {
		for _, p := range t.Partitions {
			n += len(p.Records)
		}
	}
	if n == 0 {
		return
	}
	client := requestClientFrom(ctx)
	d := f.s.quotas.record(set, client.user, client.id, quota.ConsumerByteRate, quotaFetch, float64(n), time.Now())
	if d <= 0 {
		return
	}
	f.resp.ThrottleMillis = max(f.resp.ThrottleMillis, throttleMillis(d))
	client.mute(d)
}

// acquire acquires records from the session's partitions into their
// entries, waiting up to MaxWait while none is available. It returns the
// leaders named in NOT_LEADER_OR_FOLLOWER errors.
func (f *shareFetch) acquire(ctx context.Context, entry func(share.TopicPartition) *kmsg.ShareFetchResponseTopicPartition) []int32 {
	s := f.s
	maxRecords := int(f.req.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = defaultShareMaxRecords
	}
	maxBytes := int(f.req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = math.MaxInt32
	}
	maxWait := time.Duration(f.req.MaxWaitMillis) * time.Millisecond
	var partMax map[share.TopicPartition]int
	for _, rt := range f.req.Topics {
		for _, rp := range rt.Partitions {
			if rp.PartitionMaxBytes > 0 {
				if partMax == nil {
					partMax = make(map[share.TopicPartition]int)
				}
				partMax[share.TopicPartition{TopicID: rt.TopicID, Partition: rp.Partition}] = int(rp.PartitionMaxBytes)
			}
		}
	}
	// Resolve the partitions once; watch them before the first attempt
	// so an append in between still wakes the wait.
	targets := make([]share.Target, len(f.parts))
	errs := make([]error, len(f.parts))
	handles := make([]Partition, len(f.parts))
	for i, tp := range f.parts {
		targets[i], handles[i], errs[i] = s.shareTarget(tp)
	}
	var waiter *partition.Waiter
	if maxWait > 0 {
		waiter = partition.NewWaiter()
		for _, p := range handles {
			if p != nil {
				p.Watch(waiter)
			}
		}
		defer func() {
			for _, p := range handles {
				if p != nil {
					p.Unwatch(waiter)
				}
			}
		}()
	}
	var (
		timer    *time.Timer
		deadline time.Time
		// shortened is set once the wait is cut to shareHoldingWait.
		shortened bool
	)
	for {
		changed := s.shares.Changed(f.group)
		got, final, holdsLocks := 0, false, false
		var leaders []int32
		records, bytes := 0, 0
		// Start at a different partition each request, so one busy
		// partition does not take every request's MaxRecords.
		start := 0
		if n := len(f.parts); n > 0 {
			start = int(max(f.req.ShareSessionEpoch, 0)) % n
		}
		for k := range f.parts {
			i := (start + k) % len(f.parts)
			tp := f.parts[i]
			err := errs[i]
			var a share.Acquired
			if err == nil && records < maxRecords && bytes < maxBytes {
				limit := maxBytes - bytes
				if m, ok := partMax[tp]; ok {
					limit = min(limit, m)
				}
				a, err = s.shares.Acquire(ctx, f.group, f.member, targets[i], share.AcquireRequest{MaxRecords: maxRecords - records, MaxBytes: limit, Strict: f.req.Version >= 2 && f.req.ShareAcquireMode == 1})
			}
			if err == nil && len(a.Ranges) == 0 {
				holdsLocks = holdsLocks || a.HoldsLocks
				continue
			}
			e := entry(tp)
			if err != nil {
				e.ErrorCode = s.errorCode(err)
				final = true
				if node, epoch, ok := currentLeader(handles[i], e.ErrorCode); ok {
					e.CurrentLeader.LeaderID, e.CurrentLeader.LeaderEpoch = node, epoch
					leaders = append(leaders, node)
				}
				continue
			}
			got++
			bytes += len(a.Records)
			e.Records = a.Records
			for _, r := range a.Ranges {
				records += int(r.Last - r.First + 1)
				e.AcquiredRecords = append(e.AcquiredRecords, kmsg.ShareFetchResponseTopicPartitionAcquiredRecord{FirstOffset: r.First, LastOffset: r.Last, DeliveryCount: r.DeliveryCount})
			}
		}
		// Acquired records are locked: answer with them at once rather
		// than hold them while waiting for MinBytes.
		if got > 0 || final || waiter == nil {
			return leaders
		}
		if timer == nil {
			deadline = time.Now().Add(maxWait)
			timer = time.NewTimer(maxWait)
			defer timer.Stop()
		}
		if holdsLocks && !shortened {
			// The member's own unacknowledged records fill a
			// share-partition's lock window (now, or since a wake-up);
			// its acknowledgements wait in its client for this
			// response.
			shortened = true
			if time.Until(deadline) > shareHoldingWait {
				timer.Reset(shareHoldingWait)
			}
		}
		select {
		case <-waiter.C:
		case <-changed:
		case <-timer.C:
			return leaders
		case <-ctx.Done():
			return leaders
		case <-s.drain.Done():
			return leaders
		}
	}
}
