package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/replication/raftgroup"
)

// startClusterProcesses starts n `sluice serve` processes forming one
// cluster on 127.0.0.1 (no proxies), with data under dir, and waits until
// each listens.
func startClusterProcesses(tb testing.TB, dir string, n int) []*sluiceProcess {
	tb.Helper()
	addrs := freeAddrs(tb, 2*n) // held until all are chosen: no two alike
	raftAddrs := addrs[n:]
	procs := make([]*sluiceProcess, n)
	var members []string
	for i := range procs {
		procs[i] = &sluiceProcess{tb: tb, Addr: addrs[i], DataDir: filepath.Join(dir, fmt.Sprintf("node-%d", i+1))}
		members = append(members, fmt.Sprintf("%d@%s/%s", i+1, raftAddrs[i], procs[i].Addr))
	}
	// SLUICE_BENCH_RAFT_TIMEOUT_MS (default 500) is the heartbeat and
	// election timeout; the leader lease is 500 ms or that, the smaller.
	timeout := 500
	if v := os.Getenv("SLUICE_BENCH_RAFT_TIMEOUT_MS"); v != "" {
		if _, err := fmt.Sscan(v, &timeout); err != nil || timeout < 5 {
			tb.Fatalf("SLUICE_BENCH_RAFT_TIMEOUT_MS=%q: want milliseconds, at least 5", v)
		}
	}
	ms := fmt.Sprint(timeout)
	for i, p := range procs {
		p.Args = []string{"--node-id", fmt.Sprint(i + 1), "--raft-listen", raftAddrs[i],
			"--cluster-initial-members", strings.Join(members, ","),
			"--raft-heartbeat-timeout-ms", ms, "--raft-election-timeout-ms", ms, "--raft-leader-lease-timeout-ms", fmt.Sprint(min(timeout, 500))}
		if v := os.Getenv("SLUICE_BENCH_PARTITION_TIMEOUT_MS"); v != "" {
			p.Args = append(p.Args, "--raft-partition-heartbeat-timeout-ms", v)
		}
		if os.Getenv("SLUICE_BENCH_IDLE_PROFILE") != "" {
			p.Args = append(p.Args, "--admin-listen", freeAddr(tb), "--admin-pprof-enable")
		}
		p.launch()
		tb.Cleanup(func() {
			if p.running() {
				p.Kill()
			}
		})
	}
	for _, p := range procs {
		p.waitListening()
	}
	return procs
}

// processIO returns the bytes process pid has caused to be written to
// storage (write_bytes of /proc/<pid>/io), -1 where unknown.
func processIO(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	return -1
}

// BenchmarkCluster measures what replication costs, from one run, with the
// same franz-go producer (1 KiB random values, acks=all, idempotent,
// uncompressed) into 6 partitions:
//
//   - produce-1node: a one-node cluster (every partition a one-replica Raft
//     group: the path `make run` takes);
//   - produce-3node: three processes, replication factor 3, on this one
//     machine (one disk, two cores shared by the three);
//   - disk-bytes/byte: bytes each node wrote to storage per byte of
//     payload, averaged over the replicas (/proc/<pid>/io);
//   - idle: SLUICE_BENCH_IDLE_PARTITIONS (default 1000) partitions with
//     replication factor 3, created at once, and no traffic: the time
//     until every partition had a leader (create-s) and until no leader
//     had changed for 5 s (settle-s); then each node's CPU use (share of
//     one core, /proc/<pid>/stat) and its threads' wake-ups a second
//     (context switches summed over its threads: steadier than 10 ms CPU
//     ticks) over 10 s twice: right after settling (cpu-%-tail-max-node:
//     the creation's tail, each group's first idle AppendEntries carrying
//     its commit index), and from twice the partitions' CommitTimeout
//     after all were led, when no group has anything left to send
//     (cpu-%-max-node, idle proper); resident memory, and how many
//     partitions changed leader in the last 10 s (an idle cluster: 0);
//     SLUICE_BENCH_IDLE_WINDOWS=k logs k-1 more windows;
//   - failover: SLUICE_BENCH_FAILOVERS (default 10) times, kill -9 of a
//     partition's leader during produce, then the time to the first
//     acknowledgement of a record sent after the kill (p50 and p99); the
//     killed node is restarted before the next trial.
//
// SLUICE_BENCH_FAILOVER_LOGS=dir writes the nodes' output there after a
// failover trial slower than 5 s.
// SLUICE_BENCH_IDLE_PROFILE=path also writes a 30 s CPU profile of node 1,
// taken after idle's measurement window, to path; SLUICE_BENCH_IDLE_LOGS=dir
// writes each node's output there.
//
// The three nodes run with 500 ms heartbeat and election timeouts and
// leader lease for the metadata group, or SLUICE_BENCH_RAFT_TIMEOUT_MS
// (the lease stays at most 500 ms; 1000 gives the defaults); the
// partitions' groups with the default raft.partition.heartbeat.timeout.ms,
// or SLUICE_BENCH_PARTITION_TIMEOUT_MS. SLUICE_BENCH_SCALE scales the
// records (default 200k of 1 KiB). Figures
// are reported, never asserted: read produce-3node as a ratio to
// produce-1node.
func BenchmarkCluster(b *testing.B) {
	if _, err := os.Stat("/proc/self/io"); err != nil {
		b.Skip("needs /proc")
	}
	n := int(200_000 * benchScale(b))
	dir := onDiskTempDir(b)
	var one, three benchResult
	var diskPerByte float64
	b.Run("produce-1node", func(b *testing.B) {
		p := startProcess(b, filepath.Join(dir, "one"))
		createTopic(b, p.Addr, "bench-1", 6)
		one = benchProduce(b, &testServer{Addr: p.Addr}, "bench-1", 1024, n)
		b.ReportMetric(one.mbps(), "MB/s")
		p.Kill()
	})
	procs := startClusterProcesses(b, filepath.Join(dir, "three"), 3)
	b.Run("produce-3node", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		resp, err := newAdmin(b, procs[0].Addr).CreateTopic(ctx, 6, 3, nil, "bench-3")
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			b.Fatalf("create topic: %v", err)
		}
		var before []int64
		for _, p := range procs {
			before = append(before, processIO(p.cmd.Process.Pid))
		}
		three = benchProduce(b, &testServer{Addr: procs[0].Addr}, "bench-3", 1024, n)
		var written int64
		for i, p := range procs {
			written += processIO(p.cmd.Process.Pid) - before[i]
		}
		diskPerByte = float64(written) / 3 / float64(three.payloadBytes)
		b.ReportMetric(three.mbps(), "MB/s")
		b.ReportMetric(three.mbps()/one.mbps(), "x-1node")
		b.ReportMetric(diskPerByte, "disk-bytes/byte")
	})
	b.Run("failover", func(b *testing.B) {
		trials := benchEnvInt(b, "SLUICE_BENCH_FAILOVERS", 10)
		var times []time.Duration
		for trial := range trials {
			times = append(times, failoverTrial(b, procs, fmt.Sprintf("fo-%d", trial)))
		}
		slices.Sort(times)
		p50, p99 := times[len(times)/2], times[(len(times)*99+99)/100-1]
		b.ReportMetric(p50.Seconds(), "p50-s")
		b.ReportMetric(p99.Seconds(), "p99-s")
		b.Logf("failover to the first acknowledgement, %d trials: %v", trials, times)
	})
	b.Run("idle", func(b *testing.B) {
		benchIdle(b, procs, benchEnvInt(b, "SLUICE_BENCH_IDLE_PARTITIONS", 1000))
	})
	b.Logf("produce 1 KiB acks=all: one node %.1f MB/s, three nodes (RF 3) %.1f MB/s = %.2f of one node; %.2f disk bytes per byte per replica",
		one.mbps(), three.mbps(), three.mbps()/one.mbps(), diskPerByte)
}

// benchEnvInt reads a positive integer from the environment, or def.
func benchEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// failoverTrial creates a one-partition topic replicated on every node,
// produces to it, kills its leader with kill -9, and returns the time from
// the kill to the first acknowledgement of a record produced after it. The
// killed node is restarted (and listening) before it returns.
func failoverTrial(b *testing.B, procs []*sluiceProcess, topic string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var seeds []string
	for _, p := range procs {
		seeds = append(seeds, p.Addr)
	}
	resp, err := newAdmin(b, seeds[0]).CreateTopic(ctx, 1, int16(len(procs)), nil, topic)
	if err == nil {
		err = resp.Err
	}
	// TOPIC_ALREADY_EXISTS: a retry of a request that timed out on a
	// loaded machine after the first had created it.
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		b.Fatalf("create %s: %v", topic, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryTimeout(testTimeout))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	// Warm up: the partition has a leader that acknowledges.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm")}).FirstErr(); err != nil {
		b.Fatalf("produce to %s: %v", topic, err)
	}
	// The leader as the nodes' metadata names it: a node restarted by the
	// last trial may not know it yet, so ask each in turn until one does.
	var leader int32 = -1
	for try := 0; leader < 1; try++ {
		for _, mt := range metadataOf(b, seeds[try%len(seeds)]).Topics {
			if mt.Topic != nil && *mt.Topic == topic && len(mt.Partitions) == 1 {
				leader = mt.Partitions[0].Leader
			}
		}
		if leader < 1 {
			if ctx.Err() != nil {
				b.Fatalf("no leader of %s", topic)
			}
			time.Sleep(50 * time.Millisecond) // other processes' metadata: nothing to wait on
		}
	}
	victim := procs[leader-1]
	victim.Kill()
	killed := time.Now()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		b.Fatalf("produce after the kill: %v", err)
	}
	took := time.Since(killed)
	// SLUICE_BENCH_FAILOVER_LOGS=dir writes the nodes' output there for a
	// trial slower than 5 s.
	if dir := os.Getenv("SLUICE_BENCH_FAILOVER_LOGS"); dir != "" && took > 5*time.Second {
		for i, p := range procs {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-node-%d.log", topic, i+1)), []byte(p.Output()), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("%s: failover took %s, killed node %d; logs in %s", topic, took, leader, dir)
	}
	victim.Restart()
	return took
}

// benchIdle creates a topic of n partitions replicated on every node,
// waits until each has a leader, then measures each node's CPU over 10 s
// of no traffic and its resident memory.
func benchIdle(b *testing.B, procs []*sluiceProcess, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	began := time.Now()
	resp, err := newAdmin(b, procs[0].Addr).CreateTopic(ctx, int32(n), int16(len(procs)), nil, "idle")
	if err == nil {
		err = resp.Err
	}
	// REQUEST_TIMED_OUT: the topic is created but not every partition had
	// a leader within the request's timeout; the loop below waits for it.
	// TOPIC_ALREADY_EXISTS: the client retried a request that timed out
	// on a loaded machine after the first had created it.
	if err != nil && !errors.Is(err, kerr.RequestTimedOut) && !errors.Is(err, kerr.TopicAlreadyExists) {
		b.Fatalf("create %d partitions: %v", n, err)
	}
	for {
		led := len(idleLeaders(b, procs[0].Addr))
		if led == n {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("%d of %d partitions led after %s", led, n, time.Since(began))
		}
		time.Sleep(200 * time.Millisecond) // another process's state: nothing to wait on
	}
	ready := time.Since(began)
	// Settled: no partition changed leader for idleSettle (elections after
	// a burst of creations are part of creating, not of being idle).
	const idleSettle = 5 * time.Second
	last, stableSince := idleLeaders(b, procs[0].Addr), time.Now()
	for time.Since(stableSince) < idleSettle {
		if ctx.Err() != nil {
			b.Fatalf("leaders of %d partitions still changing %s after creation", n, time.Since(began))
		}
		time.Sleep(time.Second) // another process's state: nothing to wait on
		now := idleLeaders(b, procs[0].Addr)
		if !maps.Equal(now, last) {
			last, stableSince = now, time.Now()
		}
	}
	settled := time.Since(began)
	const window = 10 * time.Second
	// The creation's tail: each group's first idle AppendEntries after its
	// creation entries commit carries the new commit index, so no earlier
	// answer can stand in for it (transport's heartbeat reuse); raft sends
	// it CommitTimeout to twice that after the group's last entry. The
	// first window after settling holds those, reported apart; idle proper
	// is measured from twice CommitTimeout after every partition was led.
	firstShares, firstWakes := idleWindow(b, procs, window)
	quiet := ready + 2*partitionCommitTimeout(b) + time.Second
	if wait := quiet - time.Since(began); wait > 0 {
		time.Sleep(wait) // waiting out the creation's tail, timed by raft's own timer
	}
	shares, wakes := idleWindow(b, procs, window)
	var maxShare, maxFirst float64
	var maxRSS int64
	for i, p := range procs {
		maxShare = max(maxShare, shares[i])
		maxFirst = max(maxFirst, firstShares[i])
		maxRSS = max(maxRSS, procStatusBytes(b, p.cmd.Process.Pid, "VmRSS:"))
	}
	// SLUICE_BENCH_IDLE_WINDOWS=k logs k-1 more windows, to see whether
	// the cost still falls after the first.
	for w := range benchEnvInt(b, "SLUICE_BENCH_IDLE_WINDOWS", 1) - 1 {
		later, laterWakes := idleWindow(b, procs, window)
		b.Logf("idle window %d: node CPU %s of a core, %s thread wake-ups a second", w+2, percents(later), rates(laterWakes))
	}
	if path := os.Getenv("SLUICE_BENCH_IDLE_PROFILE"); path != "" {
		profileIdle(b, procs[0], path)
	}
	if dir := os.Getenv("SLUICE_BENCH_IDLE_LOGS"); dir != "" {
		for i, p := range procs {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1)), []byte(p.Output()), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	changed := 0
	for p, leader := range idleLeaders(b, procs[0].Addr) {
		if last[p] != leader {
			changed++
		}
	}
	b.ReportMetric(maxShare*100, "cpu-%-max-node")
	b.ReportMetric(maxFirst*100, "cpu-%-tail-max-node")
	b.ReportMetric(float64(maxRSS)/(1<<20), "rss-MiB-max-node")
	b.ReportMetric(ready.Seconds(), "create-s")
	b.ReportMetric(settled.Seconds(), "settle-s")
	b.ReportMetric(float64(changed), "leader-changes")
	b.Logf("%d partitions, RF %d: creation's tail (the %s after settling): node CPU %s of a core (%s thread wake-ups a second)",
		n, len(procs), window, percents(firstShares), rates(firstWakes))
	b.Logf("%d partitions, RF %d, idle: node CPU %s of a core over %s (%s thread wake-ups a second) from %s, max RSS %.0f MiB; created and led in %s, no leader change for %s after %s; %d partitions changed leader during the window",
		n, len(procs), percents(shares), window, rates(wakes), quiet.Round(time.Second), float64(maxRSS)/(1<<20), ready, idleSettle, settled, changed)
}

// partitionCommitTimeout is the partition groups' CommitTimeout on the
// bench's nodes: the default, at most their heartbeat timeout.
func partitionCommitTimeout(b *testing.B) time.Duration {
	ct := raftgroup.DefaultConfig().CommitTimeout
	if v := os.Getenv("SLUICE_BENCH_PARTITION_TIMEOUT_MS"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("SLUICE_BENCH_PARTITION_TIMEOUT_MS=%q: %v", v, err)
		}
		ct = min(ct, time.Duration(ms)*time.Millisecond)
	}
	return ct
}

// idleWindow measures each node over window: the share of one core it
// used, and how many times a second its threads were switched out
// (voluntary and involuntary context switches, summed over its threads:
// each is a thread going to sleep or being preempted, so idle this counts
// wake-ups, a steadier measure than 10 ms CPU ticks).
func idleWindow(b *testing.B, procs []*sluiceProcess, window time.Duration) (shares, wakes []float64) {
	cpu0 := make([]time.Duration, len(procs))
	sw0 := make([]int64, len(procs))
	for i, p := range procs {
		cpu0[i] = versusBroker{name: "node", pid: p.cmd.Process.Pid}.cpu(b)
		sw0[i] = contextSwitches(b, p.cmd.Process.Pid)
	}
	time.Sleep(window) // measuring idle cost: the wait is the measurement
	for i, p := range procs {
		cpu := versusBroker{name: "node", pid: p.cmd.Process.Pid}.cpu(b) - cpu0[i]
		shares = append(shares, float64(cpu)/float64(window))
		wakes = append(wakes, float64(contextSwitches(b, p.cmd.Process.Pid)-sw0[i])/window.Seconds())
	}
	return shares, wakes
}

// contextSwitches sums the voluntary and involuntary context switches of
// every thread of process pid (/proc/<pid>/task/*/status).
func contextSwitches(b *testing.B, pid int) int64 {
	b.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("threads of %d: %v", pid, err)
	}
	var n int64
	for _, path := range tasks {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // a thread that ended between the glob and the read
		}
		for _, line := range strings.Split(string(data), "\n") {
			for _, field := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if rest, ok := strings.CutPrefix(line, field); ok {
					v, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
					if err != nil {
						b.Fatalf("%s: %s: %v", path, line, err)
					}
					n += v
				}
			}
		}
	}
	return n
}

// percents formats shares of a core as "4.1 %, 3.9 %".
func percents(shares []float64) string {
	var s []string
	for _, v := range shares {
		s = append(s, fmt.Sprintf("%.1f %%", v*100))
	}
	return strings.Join(s, ", ")
}

// rates formats per-second rates as "410, 395".
func rates(r []float64) string {
	var s []string
	for _, v := range r {
		s = append(s, fmt.Sprintf("%.0f", v))
	}
	return strings.Join(s, ", ")
}

// profileIdle writes a 30 s CPU profile of p (started with
// SLUICE_BENCH_IDLE_PROFILE set: its admin listener serves pprof) to path,
// for `go tool pprof`.
func profileIdle(b *testing.B, p *sluiceProcess, path string) {
	i := slices.Index(p.Args, "--admin-listen")
	if i < 0 || i+1 >= len(p.Args) {
		b.Fatalf("node has no admin listener of its own: %v", p.Args)
	}
	url := "http://" + p.Args[i+1] + "/debug/pprof/profile?seconds=30"
	client := http.Client{Timeout: time.Minute}
	resp, err := client.Get(url)
	if err != nil {
		b.Fatalf("profile idle node: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("profile idle node: status %d, %v", resp.StatusCode, err)
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("30 s CPU profile of node 1, idle: %s", path)
}

// idleLeaders returns the leader of each led partition of topic "idle".
func idleLeaders(b *testing.B, addr string) map[int32]int32 {
	leaders := map[int32]int32{}
	for _, mt := range metadataOf(b, addr).Topics {
		if mt.Topic != nil && *mt.Topic == "idle" {
			for _, p := range mt.Partitions {
				if p.Leader > 0 && p.ErrorCode == 0 {
					leaders[p.Partition] = p.Leader
				}
			}
		}
	}
	return leaders
}
