package transport

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// serveAll answers the RPCs of every transport from one goroutine, so the
// test itself adds one goroutine whatever the number of groups.
func serveAll(t testing.TB, trs []*Transport) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(stop)}}
	for _, tr := range trs {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(tr.Consumer())})
	}
	go func() {
		defer close(done)
		for {
			i, v, _ := reflect.Select(cases)
			if i == 0 {
				return
			}
			rpc := v.Interface().(raft.RPC)
			rpc.Respond(sampleResponse(rpc.Command), nil)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
}

// transportGoroutines opens groups on two Muxes, sends each group's every
// RPC type (heartbeats on the fast path, pipelines left open) and returns
// how many goroutines were added, once the transport is idle.
//
// It counts the goroutines the two Muxes run (Mux.running); expected: per
// side 2 connections with one reader goroutine each (client readers on the
// sender, server readers on the receiver), and each Mux's failure
// detector: 6. It also logs the change in
// runtime.NumGoroutine, which includes the test's own goroutines.
func transportGoroutines(t *testing.T, groups int) int {
	base := runtime.NumGoroutine()
	a := newTestMux(t, nil)
	b := newTestMux(t, nil)
	var senders, receivers []*Transport
	for g := 0; g < groups; g++ {
		name := fmt.Sprintf("group-%d", g)
		senders = append(senders, mustTransport(t, a.Mux, name))
		tb := mustTransport(t, b.Mux, name)
		tb.SetHeartbeatHandler(func(rpc raft.RPC) { rpc.Respond(sampleResponse(rpc.Command), nil) })
		receivers = append(receivers, tb)
	}
	serveAll(t, receivers)
	reqs := sampleRequests()
	delete(reqs, "install snapshot")
	for _, ta := range senders {
		for name, req := range reqs {
			var err error
			switch r := req.(type) {
			case *raft.AppendEntriesRequest:
				err = ta.AppendEntries("b", b.Addr(), r, &raft.AppendEntriesResponse{})
			case *raft.RequestVoteRequest:
				err = ta.RequestVote("b", b.Addr(), r, &raft.RequestVoteResponse{})
			case *raft.RequestPreVoteRequest:
				err = ta.RequestPreVote("b", b.Addr(), r, &raft.RequestPreVoteResponse{})
			case *raft.TimeoutNowRequest:
				err = ta.TimeoutNow("b", b.Addr(), r, &raft.TimeoutNowResponse{})
			}
			if err != nil {
				t.Fatalf("%s of %s: %v", name, ta.Group(), err)
			}
		}
		p, err := ta.AppendEntriesPipeline("b", b.Addr())
		if err != nil {
			t.Fatalf("pipeline of %s: %v", ta.Group(), err)
		}
		t.Cleanup(func() { p.Close() })
		f, err := p.AppendEntries(reqs["append entries"].(*raft.AppendEntriesRequest), &raft.AppendEntriesResponse{})
		if err != nil {
			t.Fatalf("pipelined append of %s: %v", ta.Group(), err)
		}
		if err := (<-p.Consumer()).Error(); err != nil || f.Error() != nil {
			t.Fatalf("pipelined append of %s: %v", ta.Group(), err)
		}
	}
	// A group's drain goroutine exits just after its last response is
	// written; give them a bounded moment to finish.
	var added int
	end := time.Now().Add(5 * time.Second)
	for {
		added = int(a.running.Load() + b.running.Load())
		if added <= wantGoroutines || time.Now().After(end) {
			a.mu.RLock()
			b.mu.RLock()
			conns := len(a.conns) + len(b.conns)
			b.mu.RUnlock()
			a.mu.RUnlock()
			t.Logf("%d groups: muxes run %d goroutines over %d connection ends; process has %d goroutines more than before", groups, added, conns, runtime.NumGoroutine()-base)
			if conns != 4 {
				t.Errorf("%d groups: %d connection ends, want 4 (control and bulk, both sides)", groups, conns)
			}
			return added
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantGoroutines is what transportGoroutines expects to be added.
const wantGoroutines = 6

// TestGoroutinesIndependentOfGroups checks that the goroutines of two
// connected Muxes do not grow with the number of groups: 1, 200 and 1,000
// groups, every RPC type sent in each, give the same count, over the same
// four connection ends.
func TestGoroutinesIndependentOfGroups(t *testing.T) {
	counts := map[int]int{}
	sizes := []int{1, 200, 1000}
	if testing.Short() {
		sizes = sizes[:2]
	}
	for _, groups := range sizes {
		t.Run(fmt.Sprint(groups), func(t *testing.T) {
			counts[groups] = transportGoroutines(t, groups)
		})
	}
	for _, groups := range sizes {
		if counts[groups] != wantGoroutines {
			t.Errorf("goroutines: %d with %d groups, want %d as with any number", counts[groups], groups, wantGoroutines)
		}
	}
}
