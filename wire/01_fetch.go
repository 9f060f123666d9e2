package wire

// Fetch (key 1), versions 0-18.
//
// Reads each partition's stored batches from the fetch offset, without
// decoding them, up to the high watermark (read_uncommitted) or last stable
// offset (read_committed), within the partition's and the request's max
// bytes. The first batch of the first partition with data is returned even
// when larger than those limits (KIP-74), so a consumer always progresses.
//
// With fewer than MinBytes available, the response waits up to MaxWaitMs
// for appends: the fetch registers one waiter with every partition it reads
// and sleeps until a high watermark moves or the time is up. It never
// polls. The wait runs on the connection's writer goroutine, so the reader
// keeps handling the client's other requests. On a wake-up, a partition
// that returned records and whose offsets (high watermark, last stable,
// log start) have not moved keeps what it returned; the others are read
// again, which for a caught-up partition is a few atomic loads, no I/O.
//
// Records are read into buffers lent by the server's pool
// (log.ReadRequest.Buffer) and written, without another copy, around the
// response kmsg encodes (fetch_response.go); the buffers go back to the
// pool once the response is written.
//
// Fetch sessions (KIP-227, v7+) are served: see fetch_session.go.
//
// Errors per partition: UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id,
// v13+), OFFSET_OUT_OF_RANGE with the offsets the client needs to reset,
// FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH (v9+, KIP-320),
// NOT_LEADER_OR_FOLLOWER with the current leader and epoch (CurrentLeader,
// v12+) and, from v16, that broker's address (NodeEndpoints) when this node
// knows them (KIP-951).
//
// Versions 0-3 (pre-0.11 clients) get message sets: the stored v2 batches
// read for a partition are down-converted (message_set.go) to magic 0
// messages (v0-1) or magic 1 (v2-3), one uncompressed message per record
// with its absolute offset, starting at the fetch offset. Compressed
// batches are decompressed and not re-compressed; headers are dropped and
// control batches skipped. The byte limits apply to the converted bytes,
// at message granularity: conversion stops before the message that would
// exceed the partition's share, except that the first partition with data
// always gets at least one message (KIP-74 style).
//
// Transactions (v4+, KIP-98): a read_committed fetch reads up to the last
// stable offset (the first offset of the oldest open transaction, at most
// the high watermark) and gets, in AbortedTransactions, the aborted
// transactions that may hold records of the batches returned (producer
// id, first offset), so the consumer drops their records; markers
// (control batches) are returned as stored, the client skips them. A
// long-poll wakes when the high watermark moves, which is when the last
// stable offset can.
//
// Deviations: follower fetching (replica ids) arrives with replication.
// Down-converted bytes count towards MinBytes as sent, not as stored. A
// fetch whose first batch is only a control batch returns no messages
// (v0-3, which know no transactions: control batches are skipped and an
// aborted transaction's records are returned).
//
// Version notes: v0 message format v0; v1 throttle time; v2 message format
// v1 (KIP-32); v3 request MaxBytes (KIP-74); v4 isolation level and last stable offset (KIP-98); v5 log
// start offset; v7 sessions; v9 current leader epoch; v11 rack
// (KIP-392, preferred read replica -1 here); v12 flexible, diverging epoch;
// v13 topic ids (KIP-516); v15 replica state; v16 node endpoints
// (KIP-951); v17 replica directory id; v18 high watermark in request.

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/partition"
	"github.com/sluice-io/sluice/replication/quota"
)

func handleFetch(s *Server, ctx context.Context, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.FetchRequest)
	sr := sessionRequest{id: req.SessionID, epoch: req.SessionEpoch}
	if req.Version < 7 {
		sr.id, sr.epoch = 0, -1
	}
	byID := req.Version >= 13
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := sessionKey{partition: rp.Partition}
			if byID {
				k.topicID = rt.TopicID
			} else {
				k.topic = rt.Topic
			}
			sr.full = append(sr.full, fetchTarget{key: k, fetchOffset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, currentLeaderEpoch: rp.CurrentLeaderEpoch})
		}
	}
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			k := sessionKey{partition: p}
			if byID {
				k.topicID = ft.TopicID
			} else {
				k.topic = ft.Topic
			}
			sr.forgotten = append(sr.forgotten, k)
		}
	}
	// Sessions are resolved now, on the reader, so they change in request
	// order; reading and waiting happen in finish.
	res := s.sessions.resolve(sr)
	if res.err != nil {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = res.err.Code
		return reply{resp: resp}
	}
	f := &fetch{s: s, req: req, res: res, client: requestClientFrom(ctx)}
	f.resolvePartitions()
	return reply{finish: f.run, release: f.release}
}

// fetchGrantBytes is what a fetch waits for when the memory budget has
// less room than that as it begins.
const fetchGrantBytes = 1 << 20

// fetch is one Fetch request being answered.
type fetch struct {
	s   *Server
	req *kmsg.FetchRequest
	res sessionResult
	// parts parallels res.targets: the partition, or why there is none.
	parts []Partition
	errs  []error
	// last parallels res.targets: what the previous read of each target
	// gave, reused by the next read (after a long-poll wake-up) when the
	// partition has not changed.
	last []partitionRead
	// borrowed is every buffer the reads took from the server's pool; the
	// response points into them until it is written (release).
	borrowed [][]byte
	// charged is the memory of borrowed; held is what the fetch has taken
	// from the server's memory budget: at least charged, more while a
	// grant taken before reading is not used yet (settle).
	charged, held int64
	// client sent the fetch: its consumer_byte_rate quota applies.
	client requestClient
	// room is what the budget had free when the fetch began (run): every
	// read of the fetch stays within it, so a long poll that reads again
	// reads with the same bounds.
	room int
}

// partitionRead is one target's read: its inputs, result and error.
type partitionRead struct {
	done     bool
	maxBytes int
	minOne   bool
	result   partition.ReadResult // Records down-converted for Fetch v0-3
	err      error
}

// reusable reports whether r can stand for a new read with the same
// inputs of partition p: it returned records without error and p's offsets
// are what they were. A read that returned nothing is done again: that is
// cheap (no log I/O) and notices a partition that closed.
func (r *partitionRead) reusable(p Partition, maxBytes int, minOne bool) bool {
	if !r.done || r.err != nil || len(r.result.Records) == 0 || r.maxBytes != maxBytes || r.minOne != minOne {
		return false
	}
	o := p.Offsets()
	return o.HighWatermark == r.result.HighWatermark && o.LastStable == r.result.LastStableOffset && o.LogStart == r.result.LogStartOffset
}

// buffer lends read memory from the server's pool; see
// log.ReadRequest.Buffer.
func (f *fetch) buffer(size int) []byte {
	// The read's size was bounded when the fetch began (run); memory
	// beyond what the fetch holds is charged now, without waiting (the
	// log may hold locks while it asks).
	f.charged += chargeFor(size)
	if f.charged > f.held {
		f.s.budget.force(f.charged - f.held)
		f.held = f.charged
	}
	b := f.s.buffers.get(size)
	f.borrowed = append(f.borrowed, b)
	return b[:0]
}

// settle gives back what the fetch holds beyond what its reads use: a
// fetch that then waits for data (MinBytes) holds only what it read.
func (f *fetch) settle() {
	if f.held > f.charged {
		f.s.budget.release(f.held - f.charged)
		f.held = f.charged
	}
}

// release returns the buffers the response's records were read into, and
// their memory, once it is written.
func (f *fetch) release() {
	for i, b := range f.borrowed {
		f.s.buffers.put(b)
		f.borrowed[i] = nil
	}
	f.borrowed = f.borrowed[:0]
	f.s.budget.release(f.held)
	f.held, f.charged = 0, 0
}

// resolvePartitions looks up every target's partition.
func (f *fetch) resolvePartitions() {
	f.parts = make([]Partition, len(f.res.targets))
	f.errs = make([]error, len(f.res.targets))
	f.last = make([]partitionRead, len(f.res.targets))
	for i, t := range f.res.targets {
		name := t.key.topic
		if f.req.Version >= 13 {
			topic, ok := f.s.cluster.TopicByID(t.key.topicID)
			if !ok {
				f.errs[i] = kerr.UnknownTopicID
				continue
			}
			name = topic.Name()
		}
		p, err := f.s.cluster.Partition(name, t.key.partition)
		if err == nil {
			err = checkLeaderEpoch(p, t.currentLeaderEpoch)
		}
		f.parts[i], f.errs[i] = p, err
	}
}

// run reads, waits while there is less than MinBytes and time is left,
// and returns the response.
func (f *fetch) run(ctx context.Context) kmsg.Response {
	maxWait := time.Duration(f.req.MaxWaitMillis) * time.Millisecond
	var waiter *partition.Waiter
	if maxWait > 0 && f.req.MinBytes > 0 {
		// Watch before the first read, so an append between the read and
		// the wait still wakes us.
		waiter = partition.NewWaiter()
		for _, p := range f.parts {
			if p != nil {
				p.Watch(waiter)
			}
		}
		defer func() {
			for _, p := range f.parts {
				if p != nil {
					p.Unwatch(waiter)
				}
			}
		}()
	}
	f.room = f.s.budget.room()
	if f.room < fetchGrantBytes {
		// The budget is (nearly) used up: wait in line, with the frames
		// of producers, for a grant to read with, so consumers keep a
		// share while producers flood.
		if f.s.budget.take(ctx, nil, fetchGrantBytes) == nil {
			f.held, f.room = fetchGrantBytes, fetchGrantBytes
		}
	}
	var timer *time.Timer
	for {
		resp, bytes, final := f.read()
		f.settle()
		if final || waiter == nil || bytes >= int(f.req.MinBytes) {
			return f.commit(resp)
		}
		if timer == nil {
			timer = time.NewTimer(maxWait)
			defer timer.Stop()
		}
		select {
		case <-waiter.C:
		case <-timer.C:
			resp, _, _ = f.read()
			return f.commit(resp)
		case <-ctx.Done():
			resp, _, _ = f.read()
			return f.commit(resp)
		case <-f.s.drain.Done():
			resp, _, _ = f.read()
			return f.commit(resp)
		}
	}
}

// read builds a response from the partitions' current state, reading again
// only the partitions that changed since the last read. bytes counts
// record bytes; final reports an error that the client must see now.
func (f *fetch) read() (resp *kmsg.FetchResponse, bytes int, final bool) {
	resp = f.req.ResponseKind().(*kmsg.FetchResponse)
	resp.SessionID = f.res.responseID
	isolation := partition.Isolation(f.req.IsolationLevel)
	maxBytes := int(f.req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = math.MaxInt32
	}
	// Responses share the request memory budget: read no more than it
	// had room for when the fetch began (still the first batch whole:
	// minOne).
	maxBytes = min(maxBytes, f.room)
	var topic *kmsg.FetchResponseTopic
	var leaders []int32 // named as CurrentLeader
	for i, t := range f.res.targets {
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = t.key.partition
		err := f.errs[i]
		if p := f.parts[i]; err == nil {
			partMax := int(t.maxBytes)
			if partMax > maxBytes-bytes {
				partMax = maxBytes - bytes
			}
			last := &f.last[i]
			if !last.reusable(p, partMax, bytes == 0) {
				*last = f.readPartition(p, t, partMax, bytes == 0, isolation)
			}
			rr := last.result
			err = last.err
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = rr.HighWatermark, rr.LastStableOffset, rr.LogStartOffset
			sp.RecordBatches = rr.Records
			bytes += len(sp.RecordBatches)
			for _, a := range rr.Aborted {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				sp.AbortedTransactions = append(sp.AbortedTransactions, at)
			}
		} else {
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
		}
		if err != nil {
			sp.ErrorCode = f.s.errorCode(err)
			final = final || !errors.Is(err, context.Canceled)
			if node, epoch, ok := currentLeader(f.parts[i], sp.ErrorCode); ok && f.req.Version >= 12 {
				sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = node, epoch
				leaders = append(leaders, node)
			}
		}
		if sp.RecordBatches == nil {
			// Null records (-1) break librdkafka; empty is what Kafka sends.
			sp.RecordBatches = []byte{}
		}
		if f.res.incremental && err == nil && len(sp.RecordBatches) == 0 && t.session != nil &&
			!f.s.sessions.changed(t.session, sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset) {
			continue
		}
		if topic == nil || topic.Topic != t.key.topic || topic.TopicID != t.key.topicID {
			resp.Topics = append(resp.Topics, kmsg.NewFetchResponseTopic())
			topic = &resp.Topics[len(resp.Topics)-1]
			topic.Topic, topic.TopicID = t.key.topic, t.key.topicID
		}
		topic.Partitions = append(topic.Partitions, sp)
	}
	if len(leaders) > 0 && f.req.Version >= 16 {
		for _, b := range f.s.endpoints(leaders) {
			resp.Brokers = append(resp.Brokers, kmsg.FetchResponseBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
		}
	}
	return resp, bytes, final
}

// readPartition reads one target of the fetch: up to partMax bytes (the
// first batch whole when minOne), down-converted for Fetch v0-3.
func (f *fetch) readPartition(p Partition, t fetchTarget, partMax int, minOne bool, isolation partition.Isolation) partitionRead {
	r := partitionRead{done: true, maxBytes: partMax, minOne: minOne}
	var err error
	if partMax > 0 || minOne {
		r.result, err = p.Read(nil, partition.ReadRequest{
			Offset:      t.fetchOffset,
			MaxBytes:    max(partMax, 0),
			MinOneBatch: minOne,
			Isolation:   isolation,
			Buffer:      f.buffer,
		})
	}
	if err != nil || (partMax <= 0 && !minOne) {
		o := p.Offsets()
		r.result = partition.ReadResult{HighWatermark: o.HighWatermark, LastStableOffset: o.LastStable, LogStartOffset: o.LogStart}
	}
	if f.req.Version < 4 && err == nil && len(r.result.Records) > 0 {
		r.result.Records, err = appendMessageSet(nil, r.result.Records, downConversion{
			magic:       messageFormatForFetch(f.req.Version),
			fetchOffset: t.fetchOffset,
			maxBytes:    max(partMax, 0),
			minOne:      minOne,
		})
		if err != nil {
			r.result.Records = nil
		}
	}
	r.err = err
	return r
}

// messageFormatForFetch returns the message format (magic) Fetch v0-3
// responses carry: 0 before v2, 1 from v2 (KIP-32).
func messageFormatForFetch(version int16) int8 {
	if version < 2 {
		return 0
	}
	return 1
}

// commit records, for session partitions, what the final response says.
func (f *fetch) commit(resp *kmsg.FetchResponse) kmsg.Response {
	f.chargeQuota(resp)
	if f.res.responseID == 0 {
		return resp
	}
	// Index targets by key to find each answered partition's session entry.
	entries := make(map[sessionKey]*sessionPartition, len(f.res.targets))
	for _, t := range f.res.targets {
		if t.session != nil {
			entries[t.key] = t.session
		}
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if sp := entries[sessionKey{topic: rt.Topic, topicID: rt.TopicID, partition: rp.Partition}]; sp != nil {
				f.s.sessions.commit(sp, rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset)
			}
		}
	}
	return resp
}

// chargeQuota charges the response's record bytes to the client's
// consumer_byte_rate quota. Over it, as Kafka does (KIP-219), the response
// goes without its records (the bytes are not charged: the client fetches
// them again), says how long the client is throttled, and the connection
// is muted for that long.
func (f *fetch) chargeQuota(resp *kmsg.FetchResponse) {
	set := f.s.cluster.ClientQuotas()
	if len(set) == 0 {
		return
	}
	n := fetchBytes(resp)
	if n == 0 {
		return
	}
	now := time.Now()
	d := f.s.quotas.record(set, f.client.user, f.client.id, quota.ConsumerByteRate, quotaFetch, float64(n), now)
	if d <= 0 {
		return
	}
	f.s.quotas.unrecord(set, f.client.user, f.client.id, quota.ConsumerByteRate, float64(n), now)
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			resp.Topics[i].Partitions[j].RecordBatches = []byte{}
		}
	}
	resp.ThrottleMillis = max(resp.ThrottleMillis, throttleMillis(d))
	f.client.mute(d)
}
