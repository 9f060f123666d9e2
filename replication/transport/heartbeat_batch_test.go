package transport

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestHeartbeatBatches sends heartbeats of many groups at once, so they
// share frames, and checks each caller gets its own group's answer: the
// fast path's in the batch answer, a new term's from the consumer in a
// frame of its own, and an unknown group's error.
func TestHeartbeatBatches(t *testing.T) {
	a := newTestMux(t, func(c *Config, _ *Options) { c.HeartbeatBatchWindow = 20 * time.Millisecond })
	b := newTestMux(t, nil)
	const groups = 50
	var senders []*Transport
	for g := 0; g < groups; g++ {
		name := fmt.Sprintf("group-%d", g)
		senders = append(senders, mustTransport(t, a.Mux, name))
		tb := mustTransport(t, b.Mux, name)
		// Each group answers with a last-log of its own number, so a
		// mixed-up answer shows.
		answer := func(rpc raft.RPC) {
			rpc.Respond(&raft.AppendEntriesResponse{Term: rpc.Command.(*raft.AppendEntriesRequest).Term, LastLog: uint64(g), Success: true}, nil)
		}
		tb.SetHeartbeatHandler(answer)
		serveRPCs(t, tb, answer)
	}
	unknown := mustTransport(t, a.Mux, "unknown")
	hb := sampleRequests()["heartbeat"].(*raft.AppendEntriesRequest)
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, groups+1)
		for g, ta := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var resp raft.AppendEntriesResponse
				if err := ta.AppendEntries("b", b.Addr(), hb, &resp); err != nil {
					errs <- fmt.Errorf("group %d: %w", g, err)
					return
				}
				if resp.LastLog != uint64(g) || resp.Term != hb.Term || !resp.Success {
					errs <- fmt.Errorf("group %d: answer %+v", g, resp)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := unknown.AppendEntries("b", b.Addr(), hb, &raft.AppendEntriesResponse{})
			if err == nil || !strings.Contains(err.Error(), `no group "unknown"`) {
				errs <- fmt.Errorf("unknown group: %v, want no group", err)
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
	}
}

// TestHeartbeatItemsMalformed checks that a heartbeat frame whose count or
// lengths run past its end is refused, not allocated for or panicked on.
func TestHeartbeatItemsMalformed(t *testing.T) {
	good, err := encodeItems(typeHeartbeats, []heartbeatItem{{id: 1, item: []byte("ab")}, {id: 2, item: nil}}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Join([]string{string(good[0][frameHeaderSize:])}, ""))
	items, err := decodeItems(payload)
	if err != nil || len(items) != 2 || items[0].id != 1 || string(items[0].item) != "ab" || items[1].id != 2 {
		t.Fatalf("round trip: %+v, %v", items, err)
	}
	for name, b := range map[string][]byte{
		"empty":            {},
		"count past end":   {0xff, 0xff, 0x03},
		"length past end":  {1, 1, 9, 'a'},
		"bytes left over":  append(append([]byte(nil), payload...), 0),
		"truncated varint": {0x80},
	} {
		if _, err := decodeItems(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}
