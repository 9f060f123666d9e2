package transport

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy forwards TCP connections from its listener to target until cut;
// while cut it closes every connection it has and every one it accepts.
// Its goroutines are stopped and waited for by the test's cleanup.
type proxy struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup

	// bytesPerSecond, when set before the first connection, paces each
	// direction of each connection to that rate.
	bytesPerSecond int
	// forwarded counts bytes copied in either direction.
	forwarded atomic.Int64
	// blackHole, while set, makes the proxy drop what existing
	// connections carry, as a link that loses every packet would.
	blackHole atomic.Bool

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &proxy{l: l, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr returns the address to dial to reach target through the proxy.
func (p *proxy) Addr() string { return p.l.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			p.untrack(in)
			continue
		}
		if !p.track(out) {
			p.untrack(in)
			continue
		}
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// pipe copies from src to dst, then closes both.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer p.untrack(dst)
	defer p.untrack(src)
	buf := make([]byte, 32<<10)
	start := time.Now()
	var sent int64
	for {
		n, err := src.Read(buf)
		if n > 0 && p.blackHole.Load() {
			n = 0
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
			sent += int64(n)
			p.forwarded.Add(int64(n))
			if p.bytesPerSecond > 0 {
				// Pacing, not synchronisation: hold the link to its rate.
				due := start.Add(time.Duration(sent * int64(time.Second) / int64(p.bytesPerSecond)))
				time.Sleep(time.Until(due))
			}
		}
		if err != nil {
			return
		}
	}
}

// track registers c, or closes it when the link is cut.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// setCut cuts the link (closing what it carries) or restores it.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *proxy) close() {
	p.l.Close()
	p.setCut(true)
	p.wg.Wait()
}
