package test

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kfakeListenEnv, when set in the environment of this test binary, makes it
// run franz-go's in-memory broker (kfake) on that 127.0.0.1 port instead of
// the tests, until SIGTERM or SIGINT: BenchmarkVersusKfake's baseline runs
// in its own process so that its CPU time can be read apart from the
// client's.
const kfakeListenEnv = "SLUICE_BENCH_KFAKE_PORT"

// BenchmarkVersusKfake runs the same franz-go client, with the same
// settings, against a sluice process and against a kfake process (franz-go's
// in-memory broker, the baseline) and prints them side by side as ratios:
// ingest of 1 KiB and 100 B records (acks=all, idempotent, uncompressed) into
// 6 partitions, then replay of each from offset 0; the 1 KiB replay runs with
// the segment files in the page cache (warm) and again after evicting them
// (cold, posix_fadvise DONTNEED; kfake has no cold case, so its warm replay
// stands beside it). Replays run SLUICE_BENCH_ROUNDS times (default 3),
// alternating between the brokers so both see the same machine, and the
// median round of each counts. Each broker's CPU time comes from
// /proc/<pid>/stat and is reported per GB of record payload (key + value);
// peak resident memory is VmHWM.
//
// Amounts are fixed (512 MiB of 1 KiB records, 2 Mi records of 100 B), so
// run with -benchtime=1x (make bench); SLUICE_BENCH_SCALE multiplies them.
// Timings are reported, never asserted.
func BenchmarkVersusKfake(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("needs /proc for the brokers' CPU time")
	}
	scale := benchScale(b)
	rounds := benchRounds(b)
	dir := onDiskTempDir(b)
	sl := startProcess(b, filepath.Join(dir, "data"))
	kf := startKfakeProcess(b)
	brokers := []versusBroker{
		{name: "sluice", addr: sl.Addr, pid: sl.cmd.Process.Pid, dataDir: sl.DataDir},
		{name: "kfake", addr: kf.addr, pid: kf.cmd.Process.Pid},
	}
	const partitions = 6
	type versusCase struct {
		name      string
		valueSize int
		records   int
	}
	cases := []versusCase{
		{"1KiB", 1024, int(scale * (512 << 10))},
		{"100B", 100, int(scale * (2 << 20))},
	}
	// results[case][broker]
	results := map[string]map[string]versusResult{}
	record := func(name, broker string, r versusResult) {
		if results[name] == nil {
			results[name] = map[string]versusResult{}
		}
		results[name][broker] = r
	}
	var order []string
	for i, tc := range cases {
		topic := "versus-" + tc.name
		for _, br := range brokers {
			createTopic(b, br.addr, topic, partitions)
		}
		replay := func(br versusBroker) versusResult {
			return measure(b, br, func() benchResult { return benchReplay(b, &testServer{Addr: br.addr}, topic, tc.records) })
		}
		b.Run("ingest-"+tc.name, func(b *testing.B) {
			// Ingest once into each; which goes first alternates by case.
			for j := range brokers {
				br := brokers[(i+j)%len(brokers)]
				record("ingest-"+tc.name, br.name, measure(b, br, func() benchResult {
					return benchProduce(b, &testServer{Addr: br.addr}, topic, tc.valueSize, tc.records)
				}))
			}
			reportVersus(b, results["ingest-"+tc.name])
		})
		// Replay rounds alternate between the brokers, so both see the
		// same machine (which others may be loading), and the median
		// round of each counts.
		b.Run("replay-"+tc.name, func(b *testing.B) {
			rs := map[string][]versusResult{}
			for range rounds {
				for _, br := range brokers {
					rs[br.name] = append(rs[br.name], replay(br))
				}
			}
			for name, r := range rs {
				record("replay-"+tc.name, name, median(r))
			}
			reportVersus(b, results["replay-"+tc.name])
		})
		order = append(order, "ingest-"+tc.name, "replay-"+tc.name)
		if tc.valueSize != 1024 {
			continue
		}
		// Cold: sluice reads its segments after they are evicted from
		// the page cache; kfake, which has no cold case, replays warm in
		// between.
		b.Run("replay-"+tc.name+"-cold", func(b *testing.B) {
			rs := map[string][]versusResult{}
			for range rounds {
				for _, br := range brokers {
					if br.dataDir != "" {
						evictSegments(b, filepath.Join(br.dataDir, "topics"))
					}
					rs[br.name] = append(rs[br.name], replay(br))
				}
			}
			for name, r := range rs {
				record("replay-"+tc.name+"-cold", name, median(r))
			}
			reportVersus(b, results["replay-"+tc.name+"-cold"])
		})
		order = append(order, "replay-"+tc.name+"-cold")
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "case\tsluice MB/s\tkfake MB/s\tx kfake\tsluice rec/s\tkfake rec/s\tx kfake\tsluice CPU-s/GB\tkfake CPU-s/GB\t")
	for _, name := range order {
		s, k := results[name]["sluice"], results[name]["kfake"]
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.2f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t\n", name,
			s.mbps(), k.mbps(), ratio(s.mbps(), k.mbps()),
			s.recordsPerSecond(), k.recordsPerSecond(), ratio(s.recordsPerSecond(), k.recordsPerSecond()),
			s.cpuPerGB(), k.cpuPerGB())
	}
	for _, br := range brokers {
		fmt.Fprintf(w, "%s peak RSS MiB\t%.0f\t\t\t\t\t\t\t\t\n", br.name, float64(br.peakRSS(b))/(1<<20))
	}
	fmt.Fprintln(w, "(cold: sluice after evicting its segment files from the page cache, kfake warm)\t\t\t\t\t\t\t\t\t")
	w.Flush()
}

// benchScale reads SLUICE_BENCH_SCALE (default 1).
func benchScale(b *testing.B) float64 {
	b.Helper()
	s := os.Getenv("SLUICE_BENCH_SCALE")
	if s == "" {
		return 1
	}
	scale, err := strconv.ParseFloat(s, 64)
	if err != nil || scale <= 0 {
		b.Fatalf("SLUICE_BENCH_SCALE=%q is not a positive number", s)
	}
	return scale
}

// benchRounds reads SLUICE_BENCH_ROUNDS (default 3): how many times each
// replay runs; the median round is reported.
func benchRounds(b *testing.B) int {
	b.Helper()
	s := os.Getenv("SLUICE_BENCH_ROUNDS")
	if s == "" {
		return 3
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("SLUICE_BENCH_ROUNDS=%q is not a positive integer", s)
	}
	return n
}

// measure runs one case against br and adds br's CPU time over it.
func measure(b *testing.B, br versusBroker, run func() benchResult) versusResult {
	cpu := br.cpu(b)
	r := run()
	return versusResult{benchResult: r, cpu: br.cpu(b) - cpu}
}

// median returns the result with the median elapsed time.
func median(results []versusResult) versusResult {
	results = slices.Clone(results)
	slices.SortFunc(results, func(a, b versusResult) int { return cmp.Compare(a.elapsed, b.elapsed) })
	return results[len(results)/2]
}

// versusResult is a benchResult with the broker's CPU time over the case.
type versusResult struct {
	benchResult
	cpu time.Duration
}

func (r versusResult) recordsPerSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.records) / r.elapsed.Seconds()
}

// cpuPerGB is the broker's CPU seconds per GB (1e9 bytes) of payload.
func (r versusResult) cpuPerGB() float64 {
	if r.payloadBytes == 0 {
		return 0
	}
	return r.cpu.Seconds() / (float64(r.payloadBytes) / 1e9)
}

// reportVersus reports sluice's figures and its ratios to kfake's.
func reportVersus(b *testing.B, rs map[string]versusResult) {
	s, k := rs["sluice"], rs["kfake"]
	b.ReportMetric(s.mbps(), "MB/s")
	b.ReportMetric(s.recordsPerSecond(), "records/s")
	b.ReportMetric(ratio(s.mbps(), k.mbps()), "x-kfake")
	b.ReportMetric(s.cpuPerGB(), "CPU-s/GB")
	b.ReportMetric(k.cpuPerGB(), "kfake-CPU-s/GB")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// versusBroker is one broker process under measurement.
type versusBroker struct {
	name, addr string
	pid        int
	// dataDir holds the segment files; empty for an in-memory broker.
	dataDir string
}

// cpu returns the process's user plus system CPU time so far.
func (br versusBroker) cpu(b *testing.B) time.Duration {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", br.pid))
	if err != nil {
		b.Fatalf("%s cpu time: %v", br.name, err)
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14 and stime 15.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("%s cpu time: cannot parse %q", br.name, stat)
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// peakRSS returns the process's peak resident set size in bytes (VmHWM).
func (br versusBroker) peakRSS(b *testing.B) int64 {
	b.Helper()
	return processPeakRSS(b, br.pid)
}

// evictSegments drops the page cache of every file under dir.
func evictSegments(b *testing.B, dir string) {
	b.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return dropPageCache(path)
	})
	if err != nil {
		b.Fatalf("evict %s from the page cache: %v", dir, err)
	}
}

// kfakeProcess is this test binary running kfake (see kfakeListenEnv).
type kfakeProcess struct {
	addr string
	cmd  *exec.Cmd
}

// startKfakeProcess starts a one-broker kfake in a child process on a free
// 127.0.0.1 port and waits until it accepts connections; b.Cleanup kills it.
func startKfakeProcess(b *testing.B) *kfakeProcess {
	b.Helper()
	addr := freeAddr(b)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), kfakeListenEnv+"="+port)
	var output syncBuffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		b.Fatalf("start kfake: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	b.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(testTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return &kfakeProcess{addr: addr, cmd: cmd}
		}
		if time.Now().After(deadline) {
			b.Fatalf("kfake did not listen on %s within %s\n%s", addr, testTimeout, output.String())
		}
		select {
		case <-exited:
			b.Fatalf("kfake exited before listening on %s\n%s", addr, output.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runKfake serves kfake on 127.0.0.1:port until SIGTERM or SIGINT; it is
// the child side of startKfakeProcess.
func runKfake(port string) int {
	p, err := strconv.Atoi(port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", kfakeListenEnv, port, err)
		return 2
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(p))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfake: %v\n", err)
		return 1
	}
	defer c.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return 0
}
