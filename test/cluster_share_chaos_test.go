package test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/sharestate"
)

// topicPartitions returns the metadata of topic's partitions as the node
// at addr reports them, nil when the node does not answer (it may be
// down) or does not know the topic.
func topicPartitions(t *testing.T, addr, topic string) map[int32]kmsg.MetadataResponseTopicPartition {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil
	}
	defer conn.Close()
	rc := &rawConn{tb: t, conn: conn, formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID("sluice-e2e-raw"))}
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	resp, err := rc.roundTrip(req)
	if err != nil {
		return nil
	}
	for _, mt := range resp.(*kmsg.MetadataResponse).Topics {
		if mt.Topic != nil && *mt.Topic == topic && mt.ErrorCode == 0 {
			parts := make(map[int32]kmsg.MetadataResponseTopicPartition, len(mt.Partitions))
			for _, p := range mt.Partitions {
				parts[p.Partition] = p
			}
			return parts
		}
	}
	return nil
}

// liveLeader waits until every running node of procs names the same live
// leader of topic's partition p, and returns it.
func liveLeader(t *testing.T, procs []*sluiceProcess, topic string, p int32) int32 {
	t.Helper()
	var leader int32
	eventually(t, fmt.Sprintf("the running nodes name one running leader of %s-%d", topic, p), func() bool {
		leader = -1
		for _, proc := range procs {
			if !proc.running() {
				continue
			}
			part, ok := topicPartitions(t, proc.Addr, topic)[p]
			if !ok || part.ErrorCode != 0 || part.Leader < 1 || !procs[part.Leader-1].running() || leader > 0 && part.Leader != leader {
				return false
			}
			leader = part.Leader
		}
		return leader > 0
	})
	return leader
}

// waitAllInSync waits until the leader of every partition of topic
// reports all of procs in its ISR.
func waitAllInSync(t *testing.T, procs []*sluiceProcess, topic string, partitions int32) {
	t.Helper()
	for p := range partitions {
		eventually(t, fmt.Sprintf("every replica of %s-%d in sync", topic, p), func() bool {
			leader := liveLeader(t, procs, topic, p)
			part, ok := topicPartitions(t, procs[leader-1].Addr, topic)[p]
			return ok && part.Leader == leader && len(part.ISR) == len(procs)
		})
	}
}

// shareDelivery is one record handed to a share worker: when the poll
// returned it, and when (if ever) the broker confirmed its accept.
type shareDelivery struct {
	value     string
	worker    int
	partition int32
	offset    int64
	count     int32
	at        time.Time
	confirmed time.Time // zero while not confirmed
}

// shareHistory records every delivery of every value, in the order the
// workers saw them.
type shareHistory struct {
	mu         sync.Mutex
	byValue    map[string][]*shareDelivery
	phaseOf    func(value string) int
	byPhase    map[int]int // distinct values delivered per phase
	deliveries int
	confirmed  int
	last       [2]time.Time // last confirmation per partition
}

// newShareHistory returns an empty history; phaseOf names the producer
// phase of a value.
func newShareHistory(phaseOf func(string) int) *shareHistory {
	return &shareHistory{byValue: map[string][]*shareDelivery{}, phaseOf: phaseOf, byPhase: map[int]int{}}
}

// deliver records that worker was handed r at at.
func (h *shareHistory) deliver(worker int, r *kgo.Record, at time.Time) *shareDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := &shareDelivery{value: string(r.Value), worker: worker, partition: r.Partition, offset: r.Offset, count: r.DeliveryCount(), at: at}
	if len(h.byValue[string(r.Value)]) == 0 {
		h.byPhase[h.phaseOf(string(r.Value))]++
	}
	h.byValue[string(r.Value)] = append(h.byValue[string(r.Value)], d)
	h.deliveries++
	return d
}

// confirm records that the broker confirmed the accept of d at at.
func (h *shareHistory) confirm(d *shareDelivery, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d.confirmed = at
	h.confirmed++
	if d.partition >= 0 && int(d.partition) < len(h.last) && at.After(h.last[d.partition]) {
		h.last[d.partition] = at
	}
}

// counts returns the distinct values delivered, the deliveries and the
// confirmed accepts so far.
func (h *shareHistory) counts() (distinct, deliveries, confirmed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byValue), h.deliveries, h.confirmed
}

// phaseDelivered returns how many distinct values of phase were
// delivered.
func (h *shareHistory) phaseDelivered(phase int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byPhase[phase]
}

// eventuallyConfirmedAfter waits, at most d, for an accept of a record
// of partition p handed out after since to be confirmed, and says
// whether one was.
func (h *shareHistory) eventuallyConfirmedAfter(p int32, since time.Time, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for h.firstConfirmedAfter(p, since).IsZero() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// summary describes, for a failure, the distinct values delivered per
// phase and the last delivery per partition.
func (h *shareHistory) summary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	last := map[int32]time.Time{}
	for _, ds := range h.byValue {
		for _, d := range ds {
			if d.at.After(last[d.partition]) {
				last[d.partition] = d.at
			}
		}
	}
	return fmt.Sprintf("distinct values delivered per phase %v, last delivery per partition %v", h.byPhase, last)
}

// firstConfirmedAfter returns the earliest confirmation of a delivery of
// partition p handed out after since, zero when none yet.
func (h *shareHistory) firstConfirmedAfter(p int32, since time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var first time.Time
	for _, ds := range h.byValue {
		for _, d := range ds {
			if d.partition == p && d.at.After(since) && !d.confirmed.IsZero() && (first.IsZero() || d.confirmed.Before(first)) {
				first = d.confirmed
			}
		}
	}
	return first
}

// ackResults collects what kgo.ShareAckCallback reports for one worker:
// per partition, whether any acknowledgement failed and when the last
// one succeeded, since the last take.
type ackResults struct {
	mu     sync.Mutex
	failed map[int32]bool
	okAt   map[int32]time.Time
}

func (a *ackResults) callback(_ *kgo.Client, rs kgo.ShareAckResults) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range rs {
		if r.Err != nil {
			a.failed[r.Partition] = true
		} else {
			a.okAt[r.Partition] = now
		}
	}
}

// take returns, per partition, the time the broker confirmed every
// acknowledgement sent since the last take (absent when one failed or
// none was answered), and resets.
func (a *ackResults) take() map[int32]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[int32]time.Time{}
	for p, at := range a.okAt {
		if !a.failed[p] {
			out[p] = at
		}
	}
	a.failed, a.okAt = map[int32]bool{}, map[int32]time.Time{}
	return out
}

// shareHold asks one share worker to keep the records of a partition it
// is handed, unacknowledged, across a node's death: the worker that
// takes it sends what it holds on held and acknowledges only once
// release is closed.
type shareHold struct {
	partition int32
	held      chan []*shareDelivery
	release   chan struct{}
}

// holdSlot hands a shareHold to the first worker able to take it.
type holdSlot struct {
	mu   sync.Mutex
	hold *shareHold
}

// take returns the pending hold if records holds one of its partition's
// records, and clears the slot; nil otherwise.
func (s *holdSlot) take(records []*kgo.Record) *shareHold {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		return nil
	}
	for _, r := range records {
		if r.Partition == s.hold.partition {
			h := s.hold
			s.hold = nil
			return h
		}
	}
	return nil
}

// TestClusterShareGroupChaos has four share workers accept records of a
// two-partition topic replicated on three nodes while an acks=all
// producer writes, and kills with kill -9, one at a time, the leader of
// a data partition and then the leader of the __share_group_state
// partition holding that share-partition's state, each restarted before
// the next. Workers acknowledge every poll synchronously (FlushAcks) and
// learn from kgo.ShareAckCallback which accepts the broker confirmed.
// Nothing produced is lost, no record whose accept was confirmed is
// delivered again or accepted twice, and every share-partition ends
// complete (its start offset at the high watermark).
func TestClusterShareGroupChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	procs, _ := startMetadataCluster(t, 3)
	seeds := addrsOf(procs...)
	const topic, group, partitions, perPhase, phases = "share-chaos", "share-chaos-group", int32(2), 600, 5
	adminClient, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryTimeout(testTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adminClient.Close)
	requireShareGroups(t, adminClient)
	adm := kadm.NewClient(adminClient)
	eventually(t, "CreateTopics "+topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := adm.CreateTopic(ctx, partitions, 3, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Logf("create %s: %v", topic, err)
			return false
		}
		return true
	})
	waitAllInSync(t, procs, topic, partitions)
	var topicID [16]byte
	for _, mt := range metadataOf(t, procs[0].Addr).Topics {
		if mt.Topic != nil && *mt.Topic == topic {
			topicID = mt.TopicID
		}
	}
	setShareGroupConfigs(t, adminClient, group, map[string]string{
		"share.auto.offset.reset":       "earliest",
		"share.record.lock.duration.ms": "15000", // the least a group may set
	})

	// The producer writes a phase of perPhase records each time its gate
	// opens: one before the first kill, then one before and one after
	// each kill, so records are in flight while a leader dies and
	// produced to its successor.
	producer := newProducer(t, seeds, topic)
	gates := make([]chan struct{}, phases)
	gateOpened := make([]sync.Once, phases)
	for i := range gates {
		gates[i] = make(chan struct{})
	}
	openGate := func(phase int) { gateOpened[phase].Do(func() { close(gates[phase]) }) }
	// A failed test stops the producer where it waits.
	quit := make(chan struct{})
	t.Cleanup(func() { close(quit) })
	var (
		produceMu sync.Mutex
		produced  = map[string]bool{} // value -> acknowledged
		failed    = map[string]error{}
	)
	produceDone := make(chan struct{})
	go func() {
		defer close(produceDone)
		window := make(chan struct{}, 32)
		var wg sync.WaitGroup
		for phase, gate := range gates {
			select {
			case <-gate:
			case <-quit:
				return
			}
			for i := phase * perPhase; i < (phase+1)*perPhase; i++ {
				window <- struct{}{}
				wg.Add(1)
				r := &kgo.Record{Partition: int32(i) % partitions, Value: fmt.Appendf(nil, "chaos-%d", i)}
				producer.Produce(context.Background(), r, func(r *kgo.Record, err error) {
					produceMu.Lock()
					if err != nil {
						failed[string(r.Value)] = err
					} else {
						produced[string(r.Value)] = true
					}
					produceMu.Unlock()
					<-window
					wg.Done()
				})
			}
		}
		wg.Wait()
	}()

	var slot holdSlot
	history := newShareHistory(func(v string) int {
		var i int
		if _, err := fmt.Sscanf(v, "chaos-%d", &i); err != nil {
			return -1
		}
		return i / perPhase
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var workersDone sync.WaitGroup
	var flushErrors, fetchErrors sync.Map // worker -> count
	for w := range 4 {
		results := &ackResults{failed: map[int32]bool{}, okAt: map[int32]time.Time{}}
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID(fmt.Sprintf("chaos-worker-%d", w)),
			kgo.ShareGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(500*time.Millisecond),
			kgo.ShareMaxRecords(20), kgo.ShareMaxRecordsStrict(), kgo.ShareAckCallback(results.callback),
			kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryTimeout(testTimeout))
		if err != nil {
			t.Fatal(err)
		}
		workersDone.Add(1)
		go func() {
			defer workersDone.Done()
			defer cl.Close()
			flushes, fetches := 0, 0
			defer func() { flushErrors.Store(w, flushes); fetchErrors.Store(w, fetches) }()
			for ctx.Err() == nil {
				fs := cl.PollFetches(ctx)
				at := time.Now()
				fs.EachError(func(string, int32, error) { fetches++ })
				var held []*kgo.Record
				var delivered []*shareDelivery
				fs.EachRecord(func(r *kgo.Record) {
					held = append(held, r)
					delivered = append(delivered, history.deliver(w, r, at))
				})
				if len(held) == 0 {
					continue
				}
				if h := slot.take(held); h != nil {
					h.held <- delivered
					select {
					case <-h.release:
					case <-ctx.Done():
						return
					}
				}
				results.take() // answers to earlier acknowledgements
				for _, r := range held {
					r.Ack(kgo.AckAccept)
				}
				flushCtx, flushCancel := context.WithTimeout(ctx, testTimeout)
				err := cl.FlushAcks(flushCtx)
				flushCancel()
				if err != nil {
					flushes++
					continue
				}
				confirmedAt := results.take()
				for i, r := range held {
					if at, ok := confirmedAt[r.Partition]; ok {
						history.confirm(delivered[i], at)
					}
				}
			}
		}()
	}

	const total = phases * perPhase
	openGate(0)
	eventually(t, "workers accept half of the first phase", func() bool {
		_, _, confirmed := history.counts()
		return confirmed >= perPhase/2
	})

	// stateLeaderOf names the leader of the __share_group_state partition
	// holding share-partition (group, topic, p), as running nodes see it.
	stateLeaderOf := func(p int32) int32 {
		sp := sharestate.PartitionFor(sharestate.Key{Group: group, TopicID: topicID, Partition: p}, 3)
		var leader int32
		eventually(t, fmt.Sprintf("a running leader of %s-%d", sharestate.TopicName, sp), func() bool {
			for _, proc := range procs {
				if proc.running() {
					leader = shareStateLeader(t, proc.Addr, sp)
					return leader > 0 && procs[leader-1].running()
				}
			}
			return false
		})
		return leader
	}
	type kill struct {
		node  int32
		roles string
		at    time.Time
		held  []*shareDelivery // acquired before the kill, acknowledged after
	}
	var kills []kill
	const watched = int32(0)
	// Each kill happens while a phase is being produced and consumed:
	// records are in flight to the dying leader, acquired by workers,
	// and acknowledged.
	killAndRestart := func(node int32, roles string, phase int) {
		openGate(phase)
		eventually(t, fmt.Sprintf("workers take a quarter of phase %d", phase), func() bool {
			return history.phaseDelivered(phase) >= perPhase/4
		})
		// A worker holds records of the watched partition, acquired
		// from the node about to die, and acknowledges them only once
		// the partition has a new leader.
		hold := &shareHold{partition: watched, held: make(chan []*shareDelivery, 1), release: make(chan struct{})}
		slot.mu.Lock()
		slot.hold = hold
		slot.mu.Unlock()
		var held []*shareDelivery
		select {
		case held = <-hold.held:
		case <-time.After(testTimeout):
			t.Fatalf("no worker was handed records of %s-%d within %s", topic, watched, testTimeout)
		}
		at := time.Now()
		procs[node-1].Kill()
		kills = append(kills, kill{node, roles, at, held})
		t.Logf("killed node %d (%s)", node, roles)
		openGate(phase + 1)
		// Consumption resumes on every partition, some of it led by
		// the survivors, before the node comes back.
		liveLeader(t, procs, topic, watched)
		close(hold.release)
		for p := range partitions {
			liveLeader(t, procs, topic, p)
			if !history.eventuallyConfirmedAfter(p, at, 2*testTimeout) {
				produceMu.Lock()
				acked, lost := len(produced), len(failed)
				produceMu.Unlock()
				t.Fatalf("no accept of %s-%d confirmed within %s of node %d's death; %d records produced, %d failed; %s",
					topic, p, 2*testTimeout, node, acked, lost, history.summary())
			}
		}
		procs[node-1].Restart()
		waitAllInSync(t, procs, topic, partitions)
	}

	dataLeader := liveLeader(t, procs, topic, watched)
	stateLeader := stateLeaderOf(watched)
	roles := fmt.Sprintf("leader of %s-%d", topic, watched)
	if stateLeader == dataLeader {
		roles += fmt.Sprintf(" and of the %s partition of its state", sharestate.TopicName)
	}
	killAndRestart(dataLeader, roles, 1)
	// Next the node leading the state now (if the first node led it too,
	// its successor).
	stateLeader = stateLeaderOf(watched)
	roles = fmt.Sprintf("leader of the %s partition holding the state of %s-%d", sharestate.TopicName, topic, watched)
	if l := liveLeader(t, procs, topic, watched); l == stateLeader {
		roles += " and of " + topic + fmt.Sprintf("-%d", watched)
	}
	killAndRestart(stateLeader, roles, 3)

	select {
	case <-produceDone:
	case <-time.After(2 * testTimeout):
		t.Fatal("the producer did not finish")
	}
	produceMu.Lock()
	acked, lost := len(produced), len(failed)
	produceMu.Unlock()
	if acked+lost != total {
		t.Fatalf("%d records acknowledged and %d failed, want %d answered", acked, lost, total)
	}
	for v, err := range failed {
		t.Logf("produce of %s failed: %v", v, err)
	}

	// (c) Every share-partition completes: its start offset reaches the
	// high watermark (nothing available or acquired is left) and its lag
	// (KIP-1226, from each partition's leader, often another node than
	// the group's coordinator) is 0.
	var ends kadm.ListedOffsets
	drainBegan := time.Now()
	eventuallyWithin(t, 3*testTimeout, "every share-partition's start offset at its high watermark", func() bool {
		lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer lcancel()
		var err error
		if ends, err = adm.ListEndOffsets(lctx, topic); err != nil || ends.Error() != nil {
			return false
		}
		described, err := adm.DescribeShareGroupOffsets(lctx, group)
		if err != nil || described[group].Err != nil {
			return false
		}
		starts, lags := map[int32]int64{}, map[int32]int64{}
		for _, o := range described[group].Offsets[topic] {
			if o.Err != nil {
				return false
			}
			starts[o.Partition], lags[o.Partition] = o.StartOffset, o.Lag
		}
		for p := range partitions {
			end, ok := ends.Lookup(topic, p)
			if !ok || starts[p] != end.Offset || lags[p] != 0 {
				return false
			}
		}
		return true
	})
	t.Logf("share-partitions complete %s after the producer finished", time.Since(drainBegan).Round(time.Millisecond))
	cancel()
	workersDone.Wait()

	// A partition's Raft group waits 10 s (its HeartbeatTimeout) before
	// electing on its own: a stall that long means the failure detector's
	// failover did not replace a leader.
	const maxStall = 10 * time.Second
	for _, k := range kills {
		var stalls []string
		for p := range partitions {
			stall := history.firstConfirmedAfter(p, k.at).Sub(k.at)
			stalls = append(stalls, fmt.Sprintf("%s-%d %s", topic, p, stall.Round(time.Millisecond)))
			if stall > maxStall {
				t.Errorf("consumption of %s-%d stalled %s after the kill of node %d, more than %s", topic, p, stall.Round(time.Millisecond), k.node, maxStall)
			}
		}
		heldConfirmed, heldRedelivered := 0, 0
		for _, d := range k.held {
			if !d.confirmed.IsZero() {
				heldConfirmed++
			}
		}
		history.mu.Lock()
		for _, d := range k.held {
			for _, later := range history.byValue[d.value] {
				if later.at.After(d.at) {
					heldRedelivered++
					break
				}
			}
		}
		history.mu.Unlock()
		t.Logf("kill -9 of node %d (%s): first accept confirmed after it on %v; of the %d records a worker held across it, %d accepts confirmed, %d redelivered",
			k.node, k.roles, stalls, len(k.held), heldConfirmed, heldRedelivered)
	}
	history.mu.Lock()
	defer history.mu.Unlock()
	produceMu.Lock()
	defer produceMu.Unlock()
	var highWatermarks int64
	for p := range partitions {
		end, _ := ends.Lookup(topic, p)
		highWatermarks += end.Offset
	}
	if highWatermarks < int64(acked) {
		t.Errorf("high watermarks add up to %d, fewer than the %d records acknowledged", highWatermarks, acked)
	}
	// (a) Nothing acknowledged is lost.
	var missing []string
	for v := range produced {
		if len(history.byValue[v]) == 0 {
			missing = append(missing, v)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d acknowledged records never delivered: %v", len(missing), missing[:min(len(missing), 20)])
	}
	// (b) No record whose accept was confirmed is delivered again, or
	// accepted twice.
	redelivered, afterConfirm, twice := 0, 0, 0
	for v, ds := range history.byValue {
		if !produced[v] && failed[v] == nil {
			t.Errorf("delivered %s, which was never produced", v)
		}
		if len(ds) > 1 {
			redelivered++
		}
		var confirmedAt time.Time
		confirmations := 0
		for _, d := range ds {
			if !d.confirmed.IsZero() {
				confirmations++
				if confirmedAt.IsZero() || d.confirmed.Before(confirmedAt) {
					confirmedAt = d.confirmed
				}
			}
		}
		if confirmations > 1 {
			twice++
			if twice <= 10 {
				t.Errorf("%s accepted %d times: %s", v, confirmations, describeDeliveries(ds))
			}
		}
		for _, d := range ds {
			if !confirmedAt.IsZero() && d.at.After(confirmedAt) {
				afterConfirm++
				if afterConfirm <= 10 {
					t.Errorf("%s delivered again after its accept was confirmed: %s", v, describeDeliveries(ds))
				}
				break
			}
		}
	}
	if twice > 0 || afterConfirm > 0 {
		t.Errorf("%d records accepted twice, %d delivered after a confirmed accept", twice, afterConfirm)
	}
	var flushes, fetches []string
	for w := range 4 {
		f, _ := flushErrors.Load(w)
		e, _ := fetchErrors.Load(w)
		flushes, fetches = append(flushes, fmt.Sprint(f)), append(fetches, fmt.Sprint(e))
	}
	t.Logf("%d records produced (%d failed), %d deliveries of %d distinct records, %d accepts confirmed, %d records delivered more than once; FlushAcks errors per worker %v, fetch errors %v",
		acked, lost, history.deliveries, len(history.byValue), history.confirmed, redelivered, flushes, fetches)
}

// describeDeliveries formats the deliveries of one record for a failure.
func describeDeliveries(ds []*shareDelivery) string {
	s := ""
	for _, d := range ds {
		confirmed := "unconfirmed"
		if !d.confirmed.IsZero() {
			confirmed = "confirmed " + d.confirmed.Format("15:04:05.000")
		}
		s += fmt.Sprintf("[worker %d %d@%d count %d at %s %s]", d.worker, d.partition, d.offset, d.count, d.at.Format("15:04:05.000"), confirmed)
	}
	return s
}
