package wire

import (
	"math/bits"
	"sync"
)

// Buffer size classes: powers of two from 4 KiB to 128 MiB. A request for
// n bytes is served from the smallest class that holds n; a returned
// buffer is filed under the largest class its capacity covers, so a
// buffer taken from class c always has room for 1<<c bytes.
const (
	minBufferClass = 12 // 4 KiB
	maxBufferClass = 27 // 128 MiB
	bufferClasses  = maxBufferClass - minBufferClass + 1
)

// bufferPool lends byte slices for request frames, fetch reads and
// response encoding, so the hot paths neither allocate nor zero a buffer
// per request. It keeps at most limit bytes of idle buffers, across every
// connection of the server; beyond that a returned buffer is left to the
// garbage collector. Buffers in use are not counted: how many there are is
// bounded by the connections' in-flight requests, not by the pool.
//
// A buffer that is never returned is simply garbage, so forgetting to
// return one costs only reuse. Returning one that something still reads is
// a bug: the next borrower overwrites it. Safe for concurrent use.
type bufferPool struct {
	limit int64

	mu sync.Mutex
	// idle is the capacity of every buffer in free, at most limit.
	idle int64
	// free holds idle buffers by class, last returned last.
	free [bufferClasses][][]byte
}

func newBufferPool(limit int64) *bufferPool {
	return &bufferPool{limit: limit}
}

// get returns a slice of length n whose contents are undefined (not
// zeroed). Its capacity is at least n, a size class when n fits one.
func (p *bufferPool) get(n int) []byte {
	c := classFor(n)
	if c < 0 {
		return make([]byte, n)
	}
	p.mu.Lock()
	// A buffer of the next class up serves too: sizes that straddle a
	// class boundary (produce requests of about 1 MiB) then reuse
	// rather than allocate, for at most twice the memory.
	for k := c; k <= min(c+1, bufferClasses-1); k++ {
		free := p.free[k]
		if i := len(free) - 1; i >= 0 {
			b := free[i]
			free[i] = nil
			p.free[k] = free[:i]
			p.idle -= int64(cap(b))
			p.mu.Unlock()
			return b[:n]
		}
	}
	p.mu.Unlock()
	return make([]byte, n, 1<<(c+minBufferClass))
}

// put returns b for reuse; the caller must not touch b afterwards. A
// buffer smaller than the smallest class, larger than the largest, or
// one that would take the idle bytes above the limit is dropped.
func (p *bufferPool) put(b []byte) {
	size := cap(b)
	if size < 1<<minBufferClass || size > 1<<maxBufferClass || p == nil {
		return
	}
	// File under the largest class the capacity covers.
	c := bits.Len(uint(size)) - 1 - minBufferClass
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle+int64(size) > p.limit {
		return
	}
	p.idle += int64(size)
	p.free[c] = append(p.free[c], b[:0])
}

// idleBytes returns the capacity of the buffers waiting for reuse.
func (p *bufferPool) idleBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.idle
}

// classFor returns the index of the smallest class holding n bytes, or -1
// when n is above the largest class.
func classFor(n int) int {
	if n <= 1<<minBufferClass {
		return 0
	}
	if n > 1<<maxBufferClass {
		return -1
	}
	return bits.Len(uint(n-1)) - minBufferClass
}
