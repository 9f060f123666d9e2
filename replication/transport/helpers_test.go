package transport

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testConfig returns a Config with short timeouts for tests on 127.0.0.1.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Timeout = 2 * time.Second
	cfg.RedialBackoff = 20 * time.Millisecond
	return cfg
}

// testMux is a Mux serving on 127.0.0.1, closed by the test's cleanup.
type testMux struct {
	*Mux
	listener net.Listener
}

// newTestMux starts a Mux on a fresh 127.0.0.1 listener; edit may change
// its config and options before it starts.
func newTestMux(t testing.TB, edit func(*Config, *Options)) *testMux {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	cfg := testConfig()
	cfg.Advertise = raft.ServerAddress(l.Addr().String())
	var opts Options
	if edit != nil {
		edit(&cfg, &opts)
	}
	m, err := New(cfg, opts)
	if err != nil {
		l.Close()
		t.Fatalf("new mux: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- m.Serve(l) }()
	t.Cleanup(func() {
		m.Close()
		select {
		case err := <-served:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("serve returned %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("serve did not return within 5s of close")
		}
	})
	return &testMux{Mux: m, listener: l}
}

// mustTransport opens group on m.
func mustTransport(t testing.TB, m *Mux, group string) *Transport {
	t.Helper()
	tr, err := m.Transport(group)
	if err != nil {
		t.Fatalf("transport %q: %v", group, err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// consumer is the part of a raft.Transport serveRPCs reads.
type consumer interface{ Consumer() <-chan raft.RPC }

// serveRPCs answers every RPC on tr with answer until the test ends; the
// goroutine is stopped and waited for by the cleanup.
func serveRPCs(t testing.TB, tr consumer, answer func(raft.RPC)) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case rpc := <-tr.Consumer():
				answer(rpc)
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
}

// waitFor polls cond until it holds or timeout passes; it is for states
// that raft exposes no signal for (leadership across many groups).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
