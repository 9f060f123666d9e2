package wire

import "testing"

func TestBufferPool(t *testing.T) {
	tests := []struct {
		name    string
		limit   int64
		get     int
		wantCap int
	}{
		{"tiny rounds up to the smallest class", 1 << 20, 10, 4 << 10},
		{"exact class", 1 << 20, 64 << 10, 64 << 10},
		{"between classes rounds up", 1 << 20, 64<<10 + 1, 128 << 10},
		{"above the largest class is allocated exactly", 1 << 20, 1<<maxBufferClass + 1, 1<<maxBufferClass + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newBufferPool(tt.limit)
			b := p.get(tt.get)
			if len(b) != tt.get || cap(b) != tt.wantCap {
				t.Fatalf("get(%d): len %d cap %d, want len %d cap %d", tt.get, len(b), cap(b), tt.get, tt.wantCap)
			}
		})
	}

	t.Run("reuse", func(t *testing.T) {
		p := newBufferPool(1 << 20)
		b := p.get(5000)
		b[0] = 42
		p.put(b)
		if got := p.idleBytes(); got != 8<<10 {
			t.Fatalf("idle %d after put, want %d", got, 8<<10)
		}
		c := p.get(6000)
		if &c[:1][0] != &b[:1][0] {
			t.Fatal("a buffer of the same class was not reused")
		}
		if p.idleBytes() != 0 {
			t.Fatalf("idle %d after get, want 0", p.idleBytes())
		}
		// A request may take a buffer of the next class up, but not
		// two classes up, nor a smaller one.
		p.put(c)
		big := p.get(9000)
		if cap(big) != 16<<10 {
			t.Fatalf("get(9000) cap %d, want a new 16 KiB buffer", cap(big))
		}
		if d := p.get(100); cap(d) != 8<<10 {
			t.Fatalf("get(100) cap %d, want the idle 8 KiB buffer", cap(d))
		}
		p.put(big)
		if d := p.get(100); cap(d) != 4<<10 {
			t.Fatalf("get(100) cap %d, want a new 4 KiB buffer, not the idle 16 KiB one", cap(d))
		}
	})

	t.Run("odd capacity is filed under the class it covers", func(t *testing.T) {
		p := newBufferPool(1 << 20)
		p.put(make([]byte, 0, 12<<10)) // covers 8 KiB, not 16
		if b := p.get(8 << 10); cap(b) != 12<<10 {
			t.Fatalf("get(8 KiB) cap %d, want the 12 KiB buffer", cap(b))
		}
	})

	t.Run("idle bytes stay within the limit", func(t *testing.T) {
		p := newBufferPool(20 << 10)
		for range 10 {
			p.put(make([]byte, 8<<10))
		}
		if got := p.idleBytes(); got != 16<<10 {
			t.Fatalf("idle %d, want %d (two 8 KiB buffers within 20 KiB)", got, 16<<10)
		}
		p.put(make([]byte, 100))         // below the smallest class
		p.put(make([]byte, 256<<20)[:0]) // above the largest
		if got := p.idleBytes(); got != 16<<10 {
			t.Fatalf("idle %d, want %d", got, 16<<10)
		}
	})

	t.Run("zero limit keeps nothing", func(t *testing.T) {
		p := newBufferPool(0)
		p.put(p.get(5000))
		if p.idleBytes() != 0 {
			t.Fatal("a pool with limit 0 kept a buffer")
		}
	})

	t.Run("nil pool drops", func(t *testing.T) {
		var p *bufferPool
		p.put(make([]byte, 8<<10))
	})
}
