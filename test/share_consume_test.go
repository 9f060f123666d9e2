package test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// requireShareGroups fails t unless the node advertises the share-group
// APIs franz-go's share consumer needs: ShareGroupHeartbeat, and
// ShareFetch and ShareAcknowledge v2.
func requireShareGroups(t testing.TB, cl *kgo.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	have := map[int16]int16{}
	for _, k := range resp.ApiKeys {
		have[k.ApiKey] = k.MaxVersion
	}
	if _, ok := have[76]; !ok || have[78] < 2 || have[79] < 2 {
		t.Fatalf("share groups are not advertised: ShareGroupHeartbeat (76) %d, ShareFetch (78) %d, ShareAcknowledge (79) %d; want them, 78 and 79 at v2", have[76], have[78], have[79])
	}
}

// setShareGroupConfigs sets share group configs (GROUP resource).
func setShareGroupConfigs(t testing.TB, cl *kgo.Client, group string, kv map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for k, v := range kv {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = k, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(v)
		r.Configs = append(r.Configs, c)
	}
	req.Resources = append(req.Resources, r)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("set configs of share group %s: %v", group, err)
	}
}

// newShareConsumer is a franz-go share consumer of topics in group.
func newShareConsumer(t testing.TB, addr, group string, topics []string, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts := append([]kgo.Opt{kgo.ShareGroup(group), kgo.ConsumeTopics(topics...), kgo.FetchMaxWait(500 * time.Millisecond)}, extra...)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("sluice-e2e-share")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// produceValues produces one record per value to topic, keyed by its index.
func produceValues(t testing.TB, addr, topic string, values []string) {
	t.Helper()
	cl := newClient(t, addr, kgo.DefaultProduceTopic(topic))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	records := make([]*kgo.Record, len(values))
	for i, v := range values {
		records[i] = &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(v)}
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// deliveries collects what share consumers were handed.
type deliveries struct {
	mu sync.Mutex
	// byValue counts the deliveries of each value; maxCount is the
	// highest delivery count seen per value.
	byValue  map[string]int
	maxCount map[string]int32
	byWorker map[int]int
}

func newDeliveries() *deliveries {
	return &deliveries{byValue: map[string]int{}, maxCount: map[string]int32{}, byWorker: map[int]int{}}
}

func (d *deliveries) add(worker int, r *kgo.Record) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := string(r.Value)
	d.byValue[v]++
	d.maxCount[v] = max(d.maxCount[v], r.DeliveryCount())
	d.byWorker[worker]++
}

func (d *deliveries) distinct() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byValue)
}

// runShareWorker polls c until ctx ends, handing each record to handle,
// which acknowledges it.
func runShareWorker(ctx context.Context, c *kgo.Client, handle func(*kgo.Record)) {
	for ctx.Err() == nil {
		fs := c.PollFetches(ctx)
		fs.EachRecord(handle)
	}
}

// TestShareGroupWorkersAcceptOnce has four share consumers split two
// partitions: every record is delivered once, accepted, and never
// delivered again, and the work is spread over more members than
// partitions.
func TestShareGroupWorkersAcceptOnce(t *testing.T) {
	p := startProcess(t, t.TempDir())
	admin := newClient(t, p.Addr)
	requireShareGroups(t, admin)
	const topic, group, n = "share-workers", "share-workers-group", 2000
	createTopic(t, p.Addr, topic, 2)
	setShareGroupConfigs(t, admin, group, map[string]string{"share.auto.offset.reset": "earliest"})
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("record-%d", i)
	}
	produceValues(t, p.Addr, topic, values)

	got := newDeliveries()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var wg sync.WaitGroup
	workers := make([]*kgo.Client, 4)
	for i := range workers {
		workers[i] = newShareConsumer(t, p.Addr, group, []string{topic}, kgo.ShareMaxRecords(100))
		wg.Add(1)
		go func() {
			defer wg.Done()
			runShareWorker(ctx, workers[i], func(r *kgo.Record) {
				got.add(i, r)
				r.Ack(kgo.AckAccept)
			})
		}()
	}
	eventually(t, "every record delivered", func() bool { return got.distinct() == n })
	cancel()
	wg.Wait()
	for _, w := range workers {
		flushCtx, flushCancel := context.WithTimeout(context.Background(), testTimeout)
		if err := w.FlushAcks(flushCtx); err != nil {
			t.Errorf("flush acks: %v", err)
		}
		flushCancel()
		w.Close()
	}
	for _, v := range values {
		if c := got.byValue[v]; c != 1 || got.maxCount[v] != 1 {
			t.Fatalf("%s delivered %d times (delivery count %d), want once", v, c, got.maxCount[v])
		}
	}
	busy := 0
	for _, c := range got.byWorker {
		if c > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("records went to %d of 4 workers: %v", busy, got.byWorker)
	}
	// Accepted records are never delivered again: a new member gets
	// only what is produced next.
	produceValues(t, p.Addr, topic, []string{"after"})
	late := newShareConsumer(t, p.Addr, group, []string{topic})
	defer late.Close()
	lateCtx, lateCancel := context.WithTimeout(context.Background(), testTimeout)
	defer lateCancel()
	for {
		fs := late.PollFetches(lateCtx)
		if lateCtx.Err() != nil {
			t.Fatal("the record produced last was not delivered")
		}
		var seen []string
		fs.EachRecord(func(r *kgo.Record) { seen = append(seen, string(r.Value)); r.Ack(kgo.AckAccept) })
		if len(seen) == 0 {
			continue
		}
		if len(seen) != 1 || seen[0] != "after" {
			t.Fatalf("a new member got %v, want only [after]", seen)
		}
		break
	}
}

// TestShareGroupRedeliveryAfterLockExpiry has a worker take records and
// hang without acknowledging them: once their locks expire (the group's
// share.record.lock.duration.ms) they go to the other worker, delivered a
// second time, and every record ends accepted.
func TestShareGroupRedeliveryAfterLockExpiry(t *testing.T) {
	p := startProcess(t, t.TempDir())
	admin := newClient(t, p.Addr)
	requireShareGroups(t, admin)
	const topic, group, n = "share-redeliver", "share-redeliver-group", 200
	createTopic(t, p.Addr, topic, 1)
	setShareGroupConfigs(t, admin, group, map[string]string{
		"share.auto.offset.reset":       "earliest",
		"share.record.lock.duration.ms": "15000", // the least a group may set
	})
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("record-%d", i)
	}
	produceValues(t, p.Addr, topic, values)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// The hung worker polls once, then neither acknowledges nor polls
	// again (its next poll would accept what it holds).
	hung := newShareConsumer(t, p.Addr, group, []string{topic}, kgo.ShareMaxRecords(50), kgo.ShareMaxRecordsStrict())
	defer hung.Close()
	var held []string
	for len(held) == 0 {
		fs := hung.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("the first worker got nothing")
		}
		fs.EachRecord(func(r *kgo.Record) { held = append(held, string(r.Value)) })
	}
	got := newDeliveries()
	healthy := newShareConsumer(t, p.Addr, group, []string{topic})
	defer healthy.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runShareWorker(ctx, healthy, func(r *kgo.Record) {
			got.add(1, r)
			r.Ack(kgo.AckAccept)
		})
	}()
	eventually(t, "every record delivered to the healthy worker", func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		for _, v := range values {
			if got.byValue[v] == 0 {
				return false
			}
		}
		return true
	})
	cancel()
	<-done
	got.mu.Lock()
	defer got.mu.Unlock()
	for _, v := range held {
		if got.maxCount[v] < 2 {
			t.Fatalf("%s, held by the hung worker, came with delivery count %d, want at least 2", v, got.maxCount[v])
		}
	}
}

// TestShareGroupClosedWorkerReleases has a worker take records and close
// its client without acknowledging them: closing its share session
// releases them, so the other worker gets them at once (delivered a
// second time), long before their 15 s locks would expire.
func TestShareGroupClosedWorkerReleases(t *testing.T) {
	p := startProcess(t, t.TempDir())
	admin := newClient(t, p.Addr)
	requireShareGroups(t, admin)
	const topic, group = "share-closed", "share-closed-group"
	createTopic(t, p.Addr, topic, 1)
	setShareGroupConfigs(t, admin, group, map[string]string{
		"share.auto.offset.reset":       "earliest",
		"share.record.lock.duration.ms": "15000",
	})
	values := []string{"a", "b", "c", "d"}
	produceValues(t, p.Addr, topic, values)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	quitter := newShareConsumer(t, p.Addr, group, []string{topic})
	var held int
	for held == 0 {
		fs := quitter.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("the first worker got nothing")
		}
		held = fs.NumRecords()
	}
	quitter.Close()
	closed := time.Now()
	got := newDeliveries()
	other := newShareConsumer(t, p.Addr, group, []string{topic})
	defer other.Close()
	for got.distinct() < len(values) {
		fs := other.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the second worker got %d of %d records", got.distinct(), len(values))
		}
		fs.EachRecord(func(r *kgo.Record) { got.add(1, r); r.Ack(kgo.AckAccept) })
	}
	if waited := time.Since(closed); waited > 10*time.Second {
		t.Fatalf("records came %s after the first worker closed: released by lock expiry, not by the session close", waited)
	}
	redelivered := 0
	for _, c := range got.maxCount {
		if c >= 2 {
			redelivered++
		}
	}
	if redelivered != held {
		t.Fatalf("%d records came a second time, the first worker held %d", redelivered, held)
	}
}

// TestShareGroupDeadLetters checks KIP-1191 dead-lettering: a record
// released on every delivery is written to the group's dead-letter topic
// once it reaches share.delivery.count.limit, a rejected one at once,
// each with its provenance headers and (copy.record.enable) its key and
// value; the records after them flow on.
func TestShareGroupDeadLetters(t *testing.T) {
	p := startProcess(t, t.TempDir())
	admin := newClient(t, p.Addr)
	requireShareGroups(t, admin)
	const topic, dlq, group = "share-poison", "dlq.share-poison", "share-poison-group"
	createTopic(t, p.Addr, topic, 1)
	createDeadLetterTopic(t, p.Addr, dlq, 1)
	setShareGroupConfigs(t, admin, group, map[string]string{
		"share.auto.offset.reset":                   "earliest",
		"share.delivery.count.limit":                "3",
		"errors.deadletterqueue.topic.name":         dlq,
		"errors.deadletterqueue.copy.record.enable": "true",
	})
	values := []string{"ok-0", "ok-1", "fails", "ok-3", "bad", "ok-5"}
	produceValues(t, p.Addr, topic, values)

	got := newDeliveries()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	worker := newShareConsumer(t, p.Addr, group, []string{topic})
	defer worker.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runShareWorker(ctx, worker, func(r *kgo.Record) {
			got.add(0, r)
			switch string(r.Value) {
			case "fails":
				r.Ack(kgo.AckRelease)
			case "bad":
				r.Ack(kgo.AckReject)
			default:
				r.Ack(kgo.AckAccept)
			}
		})
	}()

	letters := map[string]*kgo.Record{}
	reader := newClient(t, p.Addr, kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for len(letters) < 2 {
		fs := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("dead letters: got %d, want 2", len(letters))
		}
		fs.EachRecord(func(r *kgo.Record) { letters[string(r.Value)] = r })
	}
	eventually(t, "the healthy records accepted", func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		return got.byValue["ok-5"] > 0
	})
	cancel()
	<-done
	for value, want := range map[string]map[string]string{
		"fails": {"__dlq.errors.topic": topic, "__dlq.errors.partition": "0", "__dlq.errors.offset": "2",
			"__dlq.errors.group": group, "__dlq.errors.delivery.count": "3", "__dlq.errors.message": "Offset delivery count exceeded the threshold."},
		"bad": {"__dlq.errors.topic": topic, "__dlq.errors.partition": "0", "__dlq.errors.offset": "4",
			"__dlq.errors.group": group, "__dlq.errors.delivery.count": "1", "__dlq.errors.message": "Offset rejected by client."},
	} {
		r := letters[value]
		if r == nil {
			t.Fatalf("no dead letter of %q; got %v", value, letters)
		}
		headers := map[string]string{}
		for _, h := range r.Headers {
			headers[h.Key] = string(h.Value)
		}
		for k, v := range want {
			if headers[k] != v {
				t.Errorf("dead letter of %q: header %s = %q, want %q (all: %v)", value, k, headers[k], v, headers)
			}
		}
		if string(r.Key) == "" {
			t.Errorf("dead letter of %q lost its key", value)
		}
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	if c := got.byValue["fails"]; c != 3 {
		t.Errorf("the released record was delivered %d times, want 3 (the limit)", c)
	}
	if c := got.byValue["bad"]; c != 1 {
		t.Errorf("the rejected record was delivered %d times, want 1", c)
	}
}

// leaderOf waits until every node names one leader of topic's partition 0
// and returns it.
func leaderOf(t *testing.T, procs []*sluiceProcess, topic string) int32 {
	t.Helper()
	var leader int32
	eventually(t, "every node names one leader of "+topic, func() bool {
		leader = -1
		for _, p := range procs {
			l, _, _ := partitionState(t, p.Addr, topic)
			if l < 1 || leader > 0 && l != leader {
				return false
			}
			leader = l
		}
		return true
	})
	return leader
}

// TestShareGroupDeadLettersToAnotherNode dead-letters records whose
// dead-letter partition another node leads: the partition leader writes
// them with its peer producer.
func TestShareGroupDeadLettersToAnotherNode(t *testing.T) {
	procs, _ := startMetadataCluster(t, 3)
	admin := newClient(t, procs[0].Addr)
	requireShareGroups(t, admin)
	const topic, dlq, group = "share-remote-poison", "dlq.share-remote-poison", "share-remote-group"
	createTopic(t, procs[0].Addr, topic, 1)
	createDeadLetterTopic(t, procs[0].Addr, dlq, 1)
	// Put the dead-letter partition on another node than the source's.
	source := leaderOf(t, procs, topic)
	if leaderOf(t, procs, dlq) == source {
		other := source%3 + 1
		if err := reassign(t, clusterAdmin(t, addrsOf(procs...)), dlq, []int32{other}); err != nil {
			t.Fatalf("move %s to node %d: %v", dlq, other, err)
		}
		waitPlacement(t, procs, dlq, []int32{other})
	}
	setShareGroupConfigs(t, admin, group, map[string]string{
		"share.auto.offset.reset":           "earliest",
		"errors.deadletterqueue.topic.name": dlq,
	})
	values := []string{"a", "b", "c"}
	produceValues(t, procs[0].Addr, topic, values)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	worker := newShareConsumer(t, procs[0].Addr, group, []string{topic})
	defer worker.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runShareWorker(ctx, worker, func(r *kgo.Record) { r.Ack(kgo.AckReject) })
	}()
	reader := newClient(t, procs[0].Addr, kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	offsets := map[string]bool{}
	for len(offsets) < len(values) {
		fs := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("dead letters of offsets %v, want 0-2", offsets)
		}
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "__dlq.errors.offset" {
					offsets[string(h.Value)] = true
				}
			}
			if r.Value != nil {
				t.Errorf("dead letter with value %q without copy.record.enable", r.Value)
			}
		})
	}
	cancel()
	<-done
}
