package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// sluiceProcess is the sluice binary running `serve` as a subprocess on
// 127.0.0.1, for tests of the real process: crashes, signals, flags.
type sluiceProcess struct {
	tb      testing.TB
	Addr    string
	DataDir string
	// Args are extra arguments after `serve --listen --data-dir`.
	Args []string
	// Env is appended to the test's environment.
	Env []string
	// OpenFileLimit, if set, is the soft and hard RLIMIT_NOFILE the
	// process starts with (sh's ulimit -n, then exec).
	OpenFileLimit int

	cmd    *exec.Cmd
	output *syncBuffer
	exited chan struct{}
	err    error // cmd.Wait's result, valid once exited is closed
}

// startProcess starts `sluice serve` on a free port of 127.0.0.1 with data
// in dataDir and waits until the port accepts connections. t.Cleanup kills
// it if still running.
func startProcess(tb testing.TB, dataDir string, args ...string) *sluiceProcess {
	tb.Helper()
	p := &sluiceProcess{tb: tb, Addr: freeAddr(tb), DataDir: dataDir, Args: args}
	p.start()
	tb.Cleanup(func() {
		if p.running() {
			p.Kill()
		}
		if tb.Failed() {
			tb.Logf("sluice output:\n%s", p.output.String())
		}
	})
	return p
}

// Ports the tests hand to servers come from below Linux's default
// ephemeral range (ip_local_port_range 32768-60999): a port taken from
// the kernel's own choices (listen on :0) and released can be handed to
// an outgoing connection or another :0 listener before the server binds
// it, and the server then fails with "address already in use".
const (
	testPortMin = 20000
	testPortMax = 32000
)

// nextTestPort is where the search for a free test port goes on; ports
// are tried in turn, so one test process never hands out one twice while
// another is still fresh.
var nextTestPort atomic.Int32

// listenTestPort listens on the next free port of [testPortMin,
// testPortMax).
func listenTestPort(tb testing.TB) net.Listener {
	tb.Helper()
	nextTestPort.CompareAndSwap(0, int32(testPortMin+rand.IntN(testPortMax-testPortMin)))
	for range testPortMax - testPortMin {
		port := nextTestPort.Add(1)
		if port >= testPortMax {
			nextTestPort.Store(testPortMin)
			port = testPortMin
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return l
		}
	}
	tb.Fatalf("no free port in [%d, %d)", testPortMin, testPortMax)
	return nil
}

// freeAddr returns 127.0.0.1:port with a port that was free a moment ago
// (below the ephemeral range: see testPortMin).
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l := listenTestPort(tb)
	defer l.Close()
	return l.Addr().String()
}

// freeAddrs returns n distinct addresses as freeAddr does.
func freeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		l := listenTestPort(tb)
		defer l.Close()
		addrs[i] = l.Addr().String()
	}
	return addrs
}

func (p *sluiceProcess) start() {
	p.tb.Helper()
	p.launch()
	p.waitListening()
}

// launch starts the process without waiting for its port: nodes of a
// cluster listen only once a majority of them runs.
func (p *sluiceProcess) launch() {
	p.tb.Helper()
	// The admin listener gets a port of its own too (a later
	// --admin-listen in Args wins), so processes never share 9644.
	args := append([]string{"serve", "--listen", p.Addr, "--data-dir", p.DataDir, "--admin-listen", "127.0.0.1:0"}, p.Args...)
	bin := sluiceBinary(p.tb)
	if p.OpenFileLimit > 0 {
		args = append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, p.OpenFileLimit), bin}, args...)
		bin = "/bin/sh"
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(p.cmd.Environ(), p.Env...)
	if p.output == nil {
		p.output = &syncBuffer{}
	}
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	if err := p.cmd.Start(); err != nil {
		p.tb.Fatalf("start sluice: %v", err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		p.err = cmd.Wait()
		close(exited)
	}(p.cmd, p.exited)
}

// waitListening polls a dial with a short backoff until the port accepts,
// the process exits, or testTimeout passes. Only process start-up is
// awaited this way: nothing else tells a test the port is bound.
func (p *sluiceProcess) waitListening() {
	p.tb.Helper()
	deadline := time.Now().Add(testTimeout)
	backoff := 5 * time.Millisecond
	for {
		conn, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-p.exited:
			p.tb.Fatalf("sluice exited before listening on %s: %v\n%s", p.Addr, p.err, p.output.String())
		case <-time.After(backoff):
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("sluice did not listen on %s within %s\n%s", p.Addr, testTimeout, p.output.String())
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

func (p *sluiceProcess) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (p *sluiceProcess) Kill() {
	p.tb.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.tb.Fatalf("kill sluice: %v", err)
	}
	<-p.exited
}

// Terminate sends SIGTERM and returns the process's exit error (nil for
// exit status 0), failing if it does not exit within testTimeout.
func (p *sluiceProcess) Terminate() error {
	p.tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.tb.Fatalf("SIGTERM sluice: %v", err)
	}
	select {
	case <-p.exited:
		return p.err
	case <-time.After(testTimeout):
		p.Kill()
		p.tb.Fatalf("sluice did not exit within %s of SIGTERM\n%s", testTimeout, p.output.String())
		return nil
	}
}

// Restart starts the process again with the same address, data dir and
// arguments; the previous one must have exited.
func (p *sluiceProcess) Restart() {
	p.tb.Helper()
	if p.running() {
		p.tb.Fatal("Restart of a running sluice")
	}
	p.start()
}

// Output returns everything the process has written to stdout and stderr.
func (p *sluiceProcess) Output() string { return p.output.String() }

// syncBuffer is a bytes.Buffer safe for the process's writes and the test's
// reads at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runSluice runs the sluice binary with args to completion and returns its
// combined output and exit error.
func runSluice(tb testing.TB, env []string, args ...string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBinary(tb), args...)
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// listenOn occupies addr until the returned listener is closed.
func listenOn(tb testing.TB, addr string) net.Listener {
	tb.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}
