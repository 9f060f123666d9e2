//go:build unix

package transport

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// BenchmarkHeartbeats sends heartbeats the way raft does for many idle
// groups (each group's sender waits HeartbeatTimeout/10 to twice that
// between heartbeats, here 100-200 ms) from one Mux to another in this
// process, for b.N rounds of one second, and reports the process's CPU
// time (user and system, both Muxes) per heartbeat, with each heartbeat in
// a frame of its own (window-0) and in batches (window-10ms).
func BenchmarkHeartbeats(b *testing.B) {
	const groups = 333
	for _, window := range []time.Duration{0, 10 * time.Millisecond} {
		b.Run(fmt.Sprintf("window-%v", window), func(b *testing.B) {
			a := newTestMux(b, func(c *Config, _ *Options) { c.HeartbeatBatchWindow = window })
			z := newTestMux(b, nil)
			var senders []*Transport
			for g := 0; g < groups; g++ {
				name := fmt.Sprintf("group-%d", g)
				senders = append(senders, mustTransport(b, a.Mux, name))
				tz := mustTransport(b, z.Mux, name)
				answer := func(rpc raft.RPC) {
					rpc.Respond(&raft.AppendEntriesResponse{Term: rpc.Command.(*raft.AppendEntriesRequest).Term, Success: true}, nil)
				}
				tz.SetHeartbeatHandler(answer)
				serveRPCs(b, tz, answer)
			}
			hb := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: 3, Addr: []byte("leader-addr")}, Term: 3, Leader: []byte("leader-addr")}
			// Once, so every group's term is known and later ones take the
			// fast path, as in a settled cluster.
			for _, ta := range senders {
				if err := ta.AppendEntries("z", z.Addr(), hb, &raft.AppendEntriesResponse{}); err != nil {
					b.Fatal(err)
				}
			}
			before := cpuTime(b)
			stop := time.Now().Add(time.Duration(b.N) * time.Second)
			var wg sync.WaitGroup
			var mu sync.Mutex
			sent := 0
			b.ResetTimer()
			for _, ta := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n := 0
					for time.Now().Before(stop) {
						time.Sleep(100*time.Millisecond + rand.N(100*time.Millisecond))
						if err := ta.AppendEntries("z", z.Addr(), hb, &raft.AppendEntriesResponse{}); err != nil {
							b.Error(err)
							return
						}
						n++
					}
					mu.Lock()
					sent += n
					mu.Unlock()
				}()
			}
			wg.Wait()
			b.StopTimer()
			used := cpuTime(b) - before
			b.ReportMetric(float64(used.Microseconds())/float64(sent), "cpu-µs/heartbeat")
			b.ReportMetric(float64(sent)/float64(b.N), "heartbeats/s")
		})
	}
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
