package transport

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
)

// benchInFlight is the pipeline window given to both transports.
const benchInFlight = 4

// benchEntries is how many entries one AppendEntries carries: raft's
// default MaxAppendEntries.
const benchEntries = 64

// benchPair is a sender and a receiving transport of one group.
type benchPair struct {
	send   raft.Transport
	recv   raft.Transport
	target raft.ServerAddress
}

func newMuxPair(b *testing.B) benchPair {
	edit := func(c *Config, _ *Options) { c.MaxInFlight = benchInFlight; c.Timeout = 10 * time.Second }
	a := newTestMux(b, edit)
	z := newTestMux(b, edit)
	return benchPair{send: mustTransport(b, a.Mux, "g"), recv: mustTransport(b, z.Mux, "g"), target: z.Addr()}
}

func newNetPair(b *testing.B) benchPair {
	newNet := func() *raft.NetworkTransport {
		tr, err := raft.NewTCPTransportWithConfig("127.0.0.1:0", nil, &raft.NetworkTransportConfig{
			MaxPool:         3,
			MaxRPCsInFlight: benchInFlight,
			Timeout:         10 * time.Second,
			Logger:          hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
		})
		if err != nil {
			b.Fatalf("tcp transport: %v", err)
		}
		b.Cleanup(func() { tr.Close() })
		return tr
	}
	a, z := newNet(), newNet()
	return benchPair{send: a, recv: z, target: z.LocalAddr()}
}

// benchAppend sends b.N pipelined AppendEntries of benchEntries entries of
// size bytes each and reports the throughput of entry data.
func benchAppend(b *testing.B, pair benchPair, size int) {
	serveRPCs(b, asTransport(pair.recv), func(rpc raft.RPC) {
		req := rpc.Command.(*raft.AppendEntriesRequest)
		rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, LastLog: req.Entries[len(req.Entries)-1].Index, Success: true}, nil)
	})
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	req := &raft.AppendEntriesRequest{RPCHeader: header("leader"), Term: 1, Leader: []byte("leader"), PrevLogEntry: 1, PrevLogTerm: 1, LeaderCommitIndex: 1}
	for i := 0; i < benchEntries; i++ {
		req.Entries = append(req.Entries, &raft.Log{Index: uint64(i + 2), Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()})
	}
	p, err := pair.send.AppendEntriesPipeline("z", pair.target)
	if err != nil {
		b.Fatalf("pipeline: %v", err)
	}
	defer p.Close()
	b.SetBytes(int64(size * benchEntries))
	b.ResetTimer()
	var wg sync.WaitGroup
	wg.Add(1)
	var failed error
	go func() {
		defer wg.Done()
		for i := 0; i < b.N; i++ {
			f := <-p.Consumer()
			if err := f.Error(); err != nil && failed == nil {
				failed = err
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
			b.Fatalf("append %d: %v", i, err)
		}
	}
	wg.Wait()
	b.StopTimer()
	if failed != nil {
		b.Fatalf("append: %v", failed)
	}
}

// asTransport adapts a raft.Transport for serveRPCs.
func asTransport(tr raft.Transport) consumer { return tr }

// BenchmarkAppendEntries compares the throughput of pipelined
// AppendEntries (64 entries per request, window 4) over a Mux and over
// raft's NetworkTransport, in the same run, and logs mux/net ratios.
func BenchmarkAppendEntries(b *testing.B) {
	results := map[string]float64{} // MB/s by "size/transport"
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, kind := range []string{"mux", "net"} {
			name := fmt.Sprintf("%dKiB/%s", size>>10, kind)
			b.Run(name, func(b *testing.B) {
				pair := newMuxPair
				if kind == "net" {
					pair = newNetPair
				}
				benchAppend(b, pair(b), size)
				results[name] = float64(int64(size*benchEntries)*int64(b.N)) / 1e6 / b.Elapsed().Seconds()
			})
		}
		mux, net := results[fmt.Sprintf("%dKiB/mux", size>>10)], results[fmt.Sprintf("%dKiB/net", size>>10)]
		if net > 0 {
			b.Logf("%d KiB entries: mux %.0f MB/s, NetworkTransport %.0f MB/s, ratio mux/net %.2f", size>>10, mux, net, mux/net)
		}
	}
}

// BenchmarkCodec compares encoding and decoding one AppendEntries of 64
// entries of 1 KiB in this package's format and in msgpack as
// raft.NetworkTransport encodes it (go-msgpack), without the network.
func BenchmarkCodec(b *testing.B) {
	data := make([]byte, 1<<10)
	req := &raft.AppendEntriesRequest{RPCHeader: header("leader"), Term: 1, Leader: []byte("leader"), PrevLogEntry: 1, PrevLogTerm: 1, LeaderCommitIndex: 1}
	for i := 0; i < benchEntries; i++ {
		req.Entries = append(req.Entries, &raft.Log{Index: uint64(i + 2), Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()})
	}
	b.Run("binary", func(b *testing.B) {
		b.SetBytes(int64(len(data) * benchEntries))
		var out bytes.Buffer
		for i := 0; i < b.N; i++ {
			out.Reset()
			var e encoder
			e.begin(typeAppendEntries, 1)
			e.str("g")
			if err := encodeRequest(&e, req); err != nil {
				b.Fatal(err)
			}
			bufs, _, err := e.finish(64 << 20)
			if err != nil {
				b.Fatal(err)
			}
			bufs.WriteTo(&out)
			b2, err := readFrame(&out, 64<<20)
			if err != nil {
				b.Fatal(err)
			}
			f, _ := parseFrame(b2)
			if _, _, err := decodeRequestFrame(f); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(out.Cap()), "buffer-bytes")
	})
	b.Run("msgpack", func(b *testing.B) {
		b.SetBytes(int64(len(data) * benchEntries))
		var out bytes.Buffer
		for i := 0; i < b.N; i++ {
			out.Reset()
			enc := codec.NewEncoder(&out, &codec.MsgpackHandle{BasicHandle: codec.BasicHandle{TimeNotBuiltin: true}})
			if err := enc.Encode(req); err != nil {
				b.Fatal(err)
			}
			var got raft.AppendEntriesRequest
			if err := codec.NewDecoder(&out, &codec.MsgpackHandle{}).Decode(&got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchGroups is how many groups BenchmarkAppendEntriesGroups runs at once.
const benchGroups = 32

// BenchmarkAppendEntriesGroups runs benchGroups groups replicating at once
// (each a pipeline of 64 × 1 KiB AppendEntries) between two nodes: over
// one Mux per node (one bulk connection shared by all groups) and over one
// NetworkTransport per group (a listener and connections per group), and
// logs the mux/net ratio of aggregate throughput.
func BenchmarkAppendEntriesGroups(b *testing.B) {
	results := map[string]float64{}
	for _, kind := range []string{"mux", "net"} {
		b.Run(kind, func(b *testing.B) {
			var pairs []benchPair
			if kind == "mux" {
				edit := func(c *Config, _ *Options) { c.MaxInFlight = benchInFlight; c.Timeout = 10 * time.Second }
				a, z := newTestMux(b, edit), newTestMux(b, edit)
				for g := 0; g < benchGroups; g++ {
					name := fmt.Sprintf("group-%d", g)
					pairs = append(pairs, benchPair{send: mustTransport(b, a.Mux, name), recv: mustTransport(b, z.Mux, name), target: z.Addr()})
				}
			} else {
				for g := 0; g < benchGroups; g++ {
					pairs = append(pairs, newNetPair(b))
				}
			}
			const size = 1 << 10
			data := make([]byte, size)
			req := &raft.AppendEntriesRequest{RPCHeader: header("leader"), Term: 1, Leader: []byte("leader"), PrevLogEntry: 1, PrevLogTerm: 1, LeaderCommitIndex: 1}
			for i := 0; i < benchEntries; i++ {
				req.Entries = append(req.Entries, &raft.Log{Index: uint64(i + 2), Term: 1, Type: raft.LogCommand, Data: data})
			}
			var pipelines []raft.AppendPipeline
			for _, pair := range pairs {
				serveRPCs(b, asTransport(pair.recv), func(rpc raft.RPC) {
					rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: true}, nil)
				})
				p, err := pair.send.AppendEntriesPipeline("z", pair.target)
				if err != nil {
					b.Fatalf("pipeline: %v", err)
				}
				b.Cleanup(func() { p.Close() })
				pipelines = append(pipelines, p)
			}
			perGroup := (b.N + benchGroups - 1) / benchGroups
			b.SetBytes(int64(size * benchEntries))
			b.ResetTimer()
			var wg sync.WaitGroup
			errs := make(chan error, 2*benchGroups)
			for _, p := range pipelines {
				wg.Add(2)
				go func() {
					defer wg.Done()
					for i := 0; i < perGroup; i++ {
						if err := (<-p.Consumer()).Error(); err != nil {
							errs <- err
						}
					}
				}()
				go func() {
					defer wg.Done()
					for i := 0; i < perGroup; i++ {
						if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatalf("append: %v", err)
			}
			results[kind] = float64(int64(size*benchEntries)*int64(perGroup*benchGroups)) / 1e6 / b.Elapsed().Seconds()
		})
	}
	if results["net"] > 0 {
		b.Logf("%d groups at once, 1 KiB entries: mux %.0f MB/s, NetworkTransport %.0f MB/s, ratio mux/net %.2f", benchGroups, results["mux"], results["net"], results["mux"]/results["net"])
	}
}
