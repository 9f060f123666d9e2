package test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupWatch collects what group members report, and lets the test wait
// for a condition on it without sleeping: every change wakes waiters.
type groupWatch struct {
	mu sync.Mutex
	// processed counts each record value consumed, over every member.
	processed map[string]int
	// assigned is each live member's current assignment of the topic.
	assigned map[string][]int32
	// assignments counts OnPartitionsAssigned calls per member.
	assignments map[string]int
	changed     chan struct{}
}

func newGroupWatch() *groupWatch {
	return &groupWatch{
		processed:   map[string]int{},
		assigned:    map[string][]int32{},
		assignments: map[string]int{},
		changed:     make(chan struct{}),
	}
}

// update runs fn under the lock and wakes waiters.
func (w *groupWatch) update(fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn()
	close(w.changed)
	w.changed = make(chan struct{})
}

// waitFor waits until cond (run under the lock) holds, failing the test
// after testTimeout with what.
func (w *groupWatch) waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.After(testTimeout)
	for {
		w.mu.Lock()
		ok, changed := cond(), w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			w.mu.Lock()
			defer w.mu.Unlock()
			tb.Fatalf("timed out waiting for %s; assignments %v, %d distinct records processed", what, w.assigned, len(w.processed))
		}
	}
}

// groupMember is a franz-go group consumer polling in a goroutine,
// reporting to a groupWatch.
type groupMember struct {
	name   string
	client *kgo.Client
	done   chan struct{}
	cancel context.CancelFunc
}

// startMember starts a consumer of topic in group; the test's cleanup
// stops it if the test did not.
func startMember(tb testing.TB, addr, group, topic, name string, w *groupWatch, opts ...kgo.Opt) *groupMember {
	tb.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("sluice-e2e-" + name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(3 * time.Second),
		kgo.RebalanceTimeout(5 * time.Second),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.AutoCommitInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			w.update(func() {
				w.assigned[name] = sortedUnion(w.assigned[name], m[topic])
				w.assignments[name]++
			})
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
			// At-least-once: commit what was processed before giving up
			// the partitions (kgo's default without this callback).
			_ = cl.CommitUncommittedOffsets(context.Background())
			w.update(func() { w.assigned[name] = without(w.assigned[name], m[topic]) })
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			w.update(func() { w.assigned[name] = without(w.assigned[name], m[topic]) })
		}),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		tb.Fatalf("kgo.NewClient: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &groupMember{name: name, client: cl, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(m.done)
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil || fetches.IsClientClosed() {
				return
			}
			var values []string
			fetches.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
			if len(values) > 0 {
				w.update(func() {
					for _, v := range values {
						w.processed[v]++
					}
				})
			}
		}
	}()
	tb.Cleanup(m.stop)
	return m
}

// stop stops polling and closes the client (which commits and leaves the
// group, unless it is a static member); stopping twice is harmless.
func (m *groupMember) stop() {
	m.cancel()
	<-m.done
	m.client.Close()
}

func sortedUnion(a, b []int32) []int32 {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

func without(a, drop []int32) []int32 {
	return slices.DeleteFunc(slices.Clone(a), func(p int32) bool { return slices.Contains(drop, p) })
}

// continuousProducer produces records "<prefix>-<n>" to topic until
// stopped, and reports every value acknowledged.
type continuousProducer struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	acked []string
	err   error
}

func startProducer(tb testing.TB, addr, topic, prefix string) *continuousProducer {
	tb.Helper()
	cl := newClient(tb, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	p := &continuousProducer{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ; i += 20 {
			select {
			case <-p.stopc:
				return
			default:
			}
			records := make([]*kgo.Record, 20)
			for j := range records {
				records[j] = &kgo.Record{Key: []byte(strconv.Itoa(i + j)), Value: fmt.Appendf(nil, "%s-%d", prefix, i+j)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			err := cl.ProduceSync(ctx, records...).FirstErr()
			cancel()
			p.mu.Lock()
			if err != nil {
				p.err = err
				p.mu.Unlock()
				return
			}
			for _, r := range records {
				p.acked = append(p.acked, string(r.Value))
			}
			p.mu.Unlock()
			time.Sleep(2 * time.Millisecond) // pace, not synchronisation: a steady trickle
		}
	}()
	tb.Cleanup(p.stop)
	return p
}

// stop stops producing and returns every acknowledged value.
func (p *continuousProducer) stop() {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	<-p.done
}

func (p *continuousProducer) values(tb testing.TB) []string {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		tb.Fatalf("producer: %v", p.err)
	}
	return slices.Clone(p.acked)
}

// TestGroupConsumersShareTopic runs franz-go group members on a
// 6-partition topic while records are produced: three members share it,
// one leaves, another joins, one more leaves; with an eager (range) and a
// cooperative (sticky) assignor. Every produced record is processed (at
// least once) and the final commits reach the log end offsets.
func TestGroupConsumersShareTopic(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"eager-range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic, group := "share-"+tc.name, "group-"+tc.name
			createTopic(t, srv.Addr, topic, 6)
			w := newGroupWatch()
			producer := startProducer(t, srv.Addr, topic, tc.name)
			member := func(name string) *groupMember {
				return startMember(t, srv.Addr, group, topic, name, w, kgo.Balancers(tc.balancer))
			}
			// balanced waits until exactly the named members own every
			// partition, each at least one, and records keep flowing.
			balanced := func(names ...string) {
				t.Helper()
				w.waitFor(t, fmt.Sprintf("partitions spread over %v", names), func() bool {
					var all []int32
					for name, ps := range w.assigned {
						if len(ps) > 0 && !slices.Contains(names, name) {
							return false
						}
					}
					for _, name := range names {
						if len(w.assigned[name]) == 0 {
							return false
						}
						all = append(all, w.assigned[name]...)
					}
					slices.Sort(all)
					return slices.Equal(all, []int32{0, 1, 2, 3, 4, 5})
				})
				w.mu.Lock()
				seen := len(w.processed)
				w.mu.Unlock()
				w.waitFor(t, "records processed after the rebalance", func() bool { return len(w.processed) > seen+100 })
			}

			a, b := member("a"), member("b")
			c := member("c")
			balanced("a", "b", "c")
			a.stop()
			w.update(func() { delete(w.assigned, "a") })
			balanced("b", "c")
			d := member("d")
			balanced("b", "c", "d")
			b.stop()
			w.update(func() { delete(w.assigned, "b") })
			balanced("c", "d")

			producer.stop()
			produced := producer.values(t)
			w.waitFor(t, "every produced record processed", func() bool {
				for _, v := range produced {
					if w.processed[v] == 0 {
						return false
					}
				}
				return true
			})
			c.stop()
			d.stop()

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			adm := newAdmin(t, srv.Addr)
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			committed, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			ends.Each(func(o kadm.ListedOffset) {
				total += o.Offset
				if got, ok := committed.Lookup(topic, o.Partition); !ok || got.Err != nil || got.At != o.Offset {
					t.Errorf("partition %d: committed %+v, want the end offset %d", o.Partition, got, o.Offset)
				}
			})
			if total != int64(len(produced)) {
				t.Errorf("end offsets sum to %d, %d records acknowledged", total, len(produced))
			}
			w.mu.Lock()
			redelivered := 0
			for _, n := range w.processed {
				redelivered += n - 1
			}
			w.mu.Unlock()
			t.Logf("%d records, %d processed more than once", len(produced), redelivered)
		})
	}
}

// describeGroup describes one group with kadm, failing on error.
func describeGroup(tb testing.TB, addr, group string) kadm.DescribedGroup {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	described, err := newAdmin(tb, addr).DescribeGroups(ctx, group)
	if err != nil {
		tb.Fatalf("describe group %s: %v", group, err)
	}
	g := described[group]
	if g.Err != nil {
		tb.Fatalf("describe group %s: %v", group, g.Err)
	}
	return g
}

// TestStaticMemberRestart restarts a static member (group.instance.id)
// within its session timeout: it gets its partitions back, the other
// member sees no rebalance and the generation stays the same.
func TestStaticMemberRestart(t *testing.T) {
	srv := startServer(t)
	const topic, group = "static", "static-group"
	createTopic(t, srv.Addr, topic, 4)
	w := newGroupWatch()
	static := func(name string) []kgo.Opt {
		return []kgo.Opt{kgo.InstanceID(name), kgo.SessionTimeout(20 * time.Second), kgo.Balancers(kgo.RangeBalancer())}
	}
	a := startMember(t, srv.Addr, group, topic, "a", w, static("a")...)
	b := startMember(t, srv.Addr, group, topic, "b", w, static("b")...)
	w.waitFor(t, "both members assigned", func() bool {
		return len(w.assigned["a"])+len(w.assigned["b"]) == 4 && len(w.assigned["a"]) > 0 && len(w.assigned["b"]) > 0
	})
	_, generation := b.client.GroupMetadata()
	w.mu.Lock()
	before := maps.Clone(w.assigned)
	bAssignments := w.assignments["b"]
	w.mu.Unlock()

	a.stop() // a static member does not leave the group on close
	if g := describeGroup(t, srv.Addr, group); len(g.Members) != 2 {
		t.Fatalf("after closing static member a: %d members, want 2 (it is still in the group)", len(g.Members))
	}
	w.update(func() { w.assigned["a"] = nil })
	a2 := startMember(t, srv.Addr, group, topic, "a", w, static("a")...)
	w.waitFor(t, "restarted member a assigned", func() bool { return len(w.assigned["a"]) > 0 })

	w.mu.Lock()
	after := maps.Clone(w.assigned)
	bAfter := w.assignments["b"]
	w.mu.Unlock()
	if !slices.Equal(after["a"], before["a"]) || !slices.Equal(after["b"], before["b"]) {
		t.Errorf("assignments changed over the restart: before %v, after %v", before, after)
	}
	if bAfter != bAssignments {
		t.Errorf("member b was assigned %d times, %d before the restart: it saw a rebalance", bAfter, bAssignments)
	}
	if _, gen := a2.client.GroupMetadata(); gen != generation {
		t.Errorf("restarted member a is in generation %d, the group was in %d", gen, generation)
	}
	if _, gen := b.client.GroupMetadata(); gen != generation {
		t.Errorf("member b is in generation %d after the restart, was %d", gen, generation)
	}
	g := describeGroup(t, srv.Addr, group)
	if g.State != "Stable" || len(g.Members) != 2 {
		t.Errorf("group %s with %d members after the restart, want Stable with 2", g.State, len(g.Members))
	}
}

// TestGroupOffsetsSurviveKill commits offsets, kills the server with
// SIGKILL, restarts it and checks that a new member resumes exactly at the
// committed offsets.
func TestGroupOffsetsSurviveKill(t *testing.T) {
	p := startProcess(t, t.TempDir(), "--group-min-session-timeout-ms", "500", "--group-initial-rebalance-delay-ms", "0")
	const topic, group = "survive", "survive-group"
	createTopic(t, p.Addr, topic, 3)
	produced := makeRecords(topic, 600)
	produceAll(t, newClient(t, p.Addr), produced)

	consumer := newClient(t, p.Addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(3*time.Second), kgo.HeartbeatInterval(200*time.Millisecond))
	// Consume about half, then commit exactly what was consumed.
	got := consumeAtLeast(t, consumer, 300)
	next := map[int32]int64{}
	for _, r := range got {
		next[r.Partition] = max(next[r.Partition], r.Offset+1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := consumer.CommitRecords(ctx, got...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	consumer.Close()

	p.Kill()
	p.Restart()

	committed, err := newAdmin(t, p.Addr).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for part, want := range next {
		if o, ok := committed.Lookup(topic, part); !ok || o.Err != nil || o.At != want {
			t.Errorf("after kill -9: partition %d committed %+v, want %d", part, o, want)
		}
	}

	resumed := newClient(t, p.Addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(3*time.Second), kgo.HeartbeatInterval(200*time.Millisecond))
	rest := consumeN(t, resumed, len(produced)-len(got))
	first := map[int32]int64{}
	for _, r := range rest {
		if _, ok := first[r.Partition]; !ok {
			first[r.Partition] = r.Offset
		}
	}
	ends := expectedByPartition(t, produced)
	for part, records := range ends {
		want := next[part] // 0 when nothing was consumed
		if want == int64(len(records)) {
			continue // fully consumed before the kill: nothing left to resume
		}
		if got, ok := first[part]; !ok || got != want {
			t.Errorf("partition %d: resumed at offset %d (consumed: %v), committed %d", part, got, ok, want)
		}
	}
}

// consumeAtLeast polls cl until it has at least n records.
func consumeAtLeast(tb testing.TB, cl *kgo.Client, n int) []*kgo.Record {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var records []*kgo.Record
	for len(records) < n {
		fetches := cl.PollRecords(ctx, n-len(records))
		if ctx.Err() != nil {
			tb.Fatalf("consumed %d of %d records before timeout", len(records), n)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			tb.Fatalf("fetch %s/%d: %v", topic, partition, err)
		})
		records = append(records, fetches.Records()...)
	}
	return records
}
