package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file holds what the cluster tests share: a proxy per directed Raft
// link that a test can cut, a continuous idempotent producer that records
// what was acknowledged, and the checks of a partition's history.

// linkProxy forwards TCP connections from its listener to target until
// cut; while cut it closes every connection it carries and every one it
// accepts. t.Cleanup closes it.
type linkProxy struct {
	l net.Listener

	mu     sync.Mutex
	target string
	cut    bool
	conns  map[net.Conn]struct{}
}

// startLinkProxy listens on a free port of 127.0.0.1 and forwards what it
// accepts to the address setTarget names.
func startLinkProxy(t *testing.T) *linkProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{l: l, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() {
		l.Close()
		p.setCut(true)
	})
	go p.accept()
	return p
}

func (p *linkProxy) Addr() string { return p.l.Addr().String() }

func (p *linkProxy) setTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *linkProxy) accept() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			continue
		}
		go func() {
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			out, err := net.DialTimeout("tcp", target, time.Second)
			if err != nil {
				p.untrack(in)
				return
			}
			if !p.track(out) {
				p.untrack(in)
				return
			}
			go p.pipe(out, in)
			p.pipe(in, out)
		}()
	}
}

// pipe copies src to dst, then closes both.
func (p *linkProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	p.untrack(src)
	p.untrack(dst)
}

// track registers c, or closes it and reports false when the link is cut.
func (p *linkProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *linkProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// setCut cuts the link (closing what it carries) or restores it.
func (p *linkProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// linkedCluster is n nodes as processes, each dialling each peer's Raft
// address through a proxy of its own: links[from][to] carries what node
// from+1 sends node to+1 (and the answers on those connections).
type linkedCluster struct {
	procs []*sluiceProcess
	links [][]*linkProxy
}

// startLinkedCluster starts n nodes as startMetadataCluster does, with a
// proxy on every directed Raft link (raft.dial.addresses per node).
func startLinkedCluster(t *testing.T, n int) *linkedCluster {
	t.Helper()
	c := &linkedCluster{procs: make([]*sluiceProcess, n), links: make([][]*linkProxy, n)}
	// The proxies bind first, so the nodes' ports, chosen next, are not
	// theirs.
	for from := range c.procs {
		c.links[from] = make([]*linkProxy, n)
		for to := range c.procs {
			if to != from {
				c.links[from][to] = startLinkProxy(t)
			}
		}
	}
	addrs := freeAddrs(t, 2*n)
	raftAddrs := make([]string, n)
	var members []string
	for i := range c.procs {
		raftAddrs[i] = addrs[2*i]
		c.procs[i] = &sluiceProcess{tb: t, Addr: addrs[2*i+1], DataDir: t.TempDir()}
		members = append(members, fmt.Sprintf("%d@%s/%s", i+1, raftAddrs[i], c.procs[i].Addr))
	}
	for from := range c.procs {
		var dials []string
		for to := range c.procs {
			if to == from {
				continue
			}
			c.links[from][to].setTarget(raftAddrs[to])
			dials = append(dials, raftAddrs[to]+"="+c.links[from][to].Addr())
		}
		p := c.procs[from]
		p.Args = []string{"--node-id", fmt.Sprint(from + 1), "--raft-listen", raftAddrs[from],
			"--cluster-initial-members", strings.Join(members, ","),
			"--raft-heartbeat-timeout-ms", "500", "--raft-election-timeout-ms", "500", "--raft-leader-lease-timeout-ms", "500",
			"--offsets-topic-num-partitions", "3", "--transaction-state-log-num-partitions", "3", "--share-coordinator-state-topic-num-partitions", "3",
			"--raft-dial-addresses", strings.Join(dials, ",")}
		p.launch()
		t.Cleanup(func() {
			if p.running() {
				p.Kill()
			}
			if t.Failed() {
				t.Logf("node %d output:\n%s", from+1, p.Output())
			}
		})
	}
	for _, p := range c.procs {
		p.waitListening()
	}
	return c
}

// isolate cuts (or, with cut false, restores) every Raft link from and to
// node (1-based).
func (c *linkedCluster) isolate(node int32, cut bool) {
	i := int(node - 1)
	for j := range c.procs {
		if j != i {
			c.links[i][j].setCut(cut)
			c.links[j][i].setCut(cut)
		}
	}
}

// killAll sends kill -9 to every running process of procs at once, then
// waits for all of them to be gone.
func killAll(t *testing.T, procs []*sluiceProcess) {
	t.Helper()
	for _, p := range procs {
		if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatalf("kill sluice: %v", err)
		}
	}
	for _, p := range procs {
		<-p.exited
	}
}

// addrsOf returns the Kafka addresses of procs.
func addrsOf(procs ...*sluiceProcess) []string {
	var addrs []string
	for _, p := range procs {
		addrs = append(addrs, p.Addr)
	}
	return addrs
}

// partitionState returns the leader, replicas and ISR of topic's
// partition 0 as the node at addr reports them (leader -1 when it names
// none or the node does not answer).
func partitionState(t *testing.T, addr, topic string) (leader int32, replicas, isr []int32) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return -1, nil, nil
	}
	defer conn.Close()
	rc := &rawConn{tb: t, conn: conn, formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID("sluice-e2e-raw"))}
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	resp, err := rc.roundTrip(req)
	if err != nil {
		return -1, nil, nil
	}
	for _, mt := range resp.(*kmsg.MetadataResponse).Topics {
		if mt.Topic != nil && *mt.Topic == topic && len(mt.Partitions) == 1 {
			mp := mt.Partitions[0]
			return mp.Leader, mp.Replicas, mp.ISR
		}
	}
	return -1, nil, nil
}

// waitInSync waits until the leader of topic's partition 0, as running
// procs name it, reports all n replicas in sync.
func waitInSync(t *testing.T, procs []*sluiceProcess, topic string) {
	t.Helper()
	eventually(t, "the leader of "+topic+" reports every replica in sync", func() bool {
		for _, p := range procs {
			if !p.running() {
				continue
			}
			leader, _, _ := partitionState(t, p.Addr, topic)
			if leader < 1 || !procs[leader-1].running() {
				continue
			}
			l, replicas, isr := partitionState(t, procs[leader-1].Addr, topic)
			return l == leader && len(replicas) == len(procs) && len(isr) == len(procs)
		}
		return false
	})
}

// load is a continuous producer: records with values prefix0, prefix1,
// ... to partition 0 of a topic, at most window in flight, until stop.
// It records every acknowledgement (value and offset) and every failure.
type load struct {
	t      *testing.T
	cl     *kgo.Client
	prefix string
	window chan struct{}
	halt   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	acked    map[string]int64 // value -> offset acknowledged
	failed   map[string]error
	progress chan struct{} // closed and replaced at every callback
}

// produceOpts are the client options of every cluster test's producer:
// idempotent (kgo's default), acks=all (its default), retries bounded only
// by testTimeout, fast metadata refresh.
func produceOpts(seeds []string, topic string) []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond),
		kgo.RetryTimeout(testTimeout), kgo.RecordDeliveryTimeout(testTimeout),
		kgo.MetadataMinAge(100 * time.Millisecond)}
}

// newProducer returns a client with produceOpts and extra; t.Cleanup
// closes it.
func newProducer(t *testing.T, seeds []string, topic string, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(produceOpts(seeds, topic), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// startLoad starts producing through cl; window bounds the records in
// flight.
func startLoad(t *testing.T, cl *kgo.Client, prefix string, window int) *load {
	l := &load{t: t, cl: cl, prefix: prefix, window: make(chan struct{}, window),
		halt: make(chan struct{}), done: make(chan struct{}),
		acked: map[string]int64{}, failed: map[string]error{}, progress: make(chan struct{})}
	go l.run()
	// Closing the client first fails what is still pending at once, so a
	// failed test does not wait for its records to time out.
	t.Cleanup(func() {
		cl.Close()
		l.stop()
	})
	return l
}

func (l *load) run() {
	defer close(l.done)
	for i := 0; ; i++ {
		select {
		case l.window <- struct{}{}:
		case <-l.halt:
			return
		}
		r := &kgo.Record{Partition: 0, Value: []byte(l.prefix + strconv.Itoa(i))}
		l.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			l.mu.Lock()
			if err != nil {
				l.failed[string(r.Value)] = err
			} else {
				l.acked[string(r.Value)] = r.Offset
			}
			close(l.progress)
			l.progress = make(chan struct{})
			l.mu.Unlock()
			<-l.window
		})
	}
}

// counts returns how many records were acknowledged and failed so far.
func (l *load) counts() (acked, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), len(l.failed)
}

// waitAcked waits, at most testTimeout, until n records are acknowledged.
func (l *load) waitAcked(n int) {
	l.t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		got, ch := len(l.acked), l.progress
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			a, f := l.counts()
			l.t.Fatalf("producer %q: %d acknowledged (%d failed), not %d within %s", l.prefix, a, f, n, testTimeout)
		}
	}
}

// stop stops producing and waits, at most testTimeout, for the callback
// of every record produced; it returns the acknowledged records (value ->
// offset) and the failed ones. Later calls return the same.
func (l *load) stop() (acked map[string]int64, failed map[string]error) {
	select {
	case <-l.halt:
	default:
		close(l.halt)
	}
	<-l.done
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for i := 0; i < cap(l.window); i++ {
		select {
		case l.window <- struct{}{}:
		case <-deadline.C:
			l.t.Errorf("producer %q: records still in flight %s after stop", l.prefix, testTimeout)
			i = cap(l.window)
		}
	}
	// Give the slots back so a second stop returns at once.
	for len(l.window) > 0 {
		<-l.window
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return copyAcked(l.acked), l.failed
}

func copyAcked(m map[string]int64) map[string]int64 {
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// endOffset returns the high watermark of topic's partition 0.
func endOffset(t *testing.T, seeds []string, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var end int64 = -1
	eventually(t, "the end offset of "+topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		offsets, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false
		}
		o, ok := offsets.Lookup(topic, 0)
		if !ok || o.Err != nil {
			return false
		}
		end = o.Offset
		return true
	})
	return end
}

// readRecords reads topic's partition 0 from the start up to end and
// returns its records in offset order.
func readRecords(t *testing.T, seeds []string, topic string, end int64) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var records []*kgo.Record
	for next := int64(0); next < end; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %d records, up to offset %d of %d: %v", topic, len(records), next, end, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			records = append(records, r)
			next = r.Offset + 1
		})
	}
	return records
}

// checkHistory reads topic's partition 0 to its end and checks it against
// what the producers were told: every acknowledged record is in the log
// exactly once, at the offset acknowledged; the records of each producer
// (by value prefix, letters then a sequence number) are in the order
// produced, none twice. It returns how many records the log holds.
func checkHistory(t *testing.T, seeds []string, topic string, acked map[string]int64) int {
	t.Helper()
	end := endOffset(t, seeds, topic)
	records := readRecords(t, seeds, topic, end)
	at := map[string][]int64{}
	last := map[string]int{}
	for _, r := range records {
		v := string(r.Value)
		at[v] = append(at[v], r.Offset)
		prefix := strings.TrimRight(v, "0123456789")
		n, err := strconv.Atoi(strings.TrimPrefix(v, prefix))
		if err != nil {
			t.Fatalf("offset %d: unexpected value %q", r.Offset, v)
		}
		if prev, ok := last[prefix]; ok && n <= prev {
			t.Fatalf("offset %d: record %s after %s%d: out of order or twice", r.Offset, v, prefix, prev)
		}
		last[prefix] = n
	}
	for v, offset := range acked {
		if got := at[v]; len(got) != 1 || got[0] != offset {
			t.Fatalf("record %s acknowledged at offset %d is in the log at offsets %v", v, offset, got)
		}
	}
	return len(records)
}

// merge returns the union of acknowledged-record maps.
func merge(ms ...map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// segmentBytes returns the concatenated bytes of the segment files of
// topic's partition 0 under dataDir, in offset order: the batches the
// replica holds, exactly as stored.
func segmentBytes(t *testing.T, dataDir, topic string) []byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dataDir, "topics", topic+"-0", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names) // zero-padded base offsets
	var all []byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// waitIdenticalLogs waits until every node in procs holds byte-identical
// segments for topic's partition 0, of at least minBytes bytes.
func waitIdenticalLogs(t *testing.T, procs []*sluiceProcess, topic string, minBytes int) {
	t.Helper()
	var sizes []int
	deadline := time.Now().Add(testTimeout)
	for {
		sizes = sizes[:0]
		first := segmentBytes(t, procs[0].DataDir, topic)
		same := len(first) >= minBytes
		sizes = append(sizes, len(first))
		for _, p := range procs[1:] {
			b := segmentBytes(t, p.DataDir, topic)
			sizes = append(sizes, len(b))
			same = same && bytes.Equal(first, b)
		}
		if same {
			t.Logf("every replica holds the same %d bytes of segments", len(first))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas' segments still differ after %s (sizes %v)", testTimeout, sizes)
		}
		time.Sleep(50 * time.Millisecond) // state in other processes: nothing to wait on
	}
}
