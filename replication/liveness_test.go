package replication

import (
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
)

// fakeLiveness is a PeerLiveness whose verdicts a test sets; it records
// the addresses it was asked to watch.
type fakeLiveness struct {
	mu      sync.Mutex
	watched map[raft.ServerAddress]bool
	down    map[raft.ServerAddress]bool
}

func newFakeLiveness() *fakeLiveness {
	return &fakeLiveness{watched: map[raft.ServerAddress]bool{}, down: map[raft.ServerAddress]bool{}}
}

func (f *fakeLiveness) WatchPeer(addr raft.ServerAddress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watched[addr] = true
}

func (f *fakeLiveness) PeerDown(addr raft.ServerAddress) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down[addr]
}

func (f *fakeLiveness) setDown(addr raft.ServerAddress, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[addr] = down
}

func (f *fakeLiveness) watching() []raft.ServerAddress {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []raft.ServerAddress
	for a := range f.watched {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// TestBrokersDown checks that every other registered node is watched by
// the failure detector, that a node it holds down is marked Down (and left
// out by LiveBrokers) until it is up again, and that this node is never
// Down, even when the detector says so of its address.
func TestBrokersDown(t *testing.T) {
	detectors := map[int32]*fakeLiveness{}
	var mu sync.Mutex
	nodes := openNodesWith(t, []int32{1, 2, 3}, func(cfg *Config, opts *Options, _ map[int32]*Cluster) {
		l := newFakeLiveness()
		mu.Lock()
		detectors[cfg.NodeID] = l
		mu.Unlock()
		opts.Liveness = l
	})
	c, l := nodes[1], detectors[1]
	if got, want := l.watching(), []raft.ServerAddress{"node-2", "node-3"}; !slices.Equal(got, want) {
		t.Fatalf("node 1 watches %v, want %v", got, want)
	}
	downOf := func() map[int32]bool {
		out := map[int32]bool{}
		for _, b := range c.Brokers() {
			out[b.NodeID] = b.Down
		}
		return out
	}
	liveIDs := func() []int32 {
		var ids []int32
		for _, b := range LiveBrokers(c.Brokers()) {
			ids = append(ids, b.NodeID)
		}
		return ids
	}
	if got := downOf(); len(got) != 3 || got[1] || got[2] || got[3] {
		t.Fatalf("before any verdict: down %v, want 3 brokers none down", got)
	}

	l.setDown("node-2", true)
	l.setDown("node-1", true) // this node's own address: ignored
	if got := downOf(); !got[2] || got[1] || got[3] {
		t.Fatalf("node-2 held down: down %v, want only 2", got)
	}
	if got, want := liveIDs(), []int32{1, 3}; !slices.Equal(got, want) {
		t.Fatalf("live brokers %v, want %v", got, want)
	}

	l.setDown("node-2", false)
	if got, want := liveIDs(), []int32{1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("node-2 up again: live brokers %v, want %v", got, want)
	}
}

// TestBrokersWithoutDetector checks that a Cluster without a failure
// detector (a single node) lists every broker as up.
func TestBrokersWithoutDetector(t *testing.T) {
	nodes := openGroupNodes(t, 1, 2, 3)
	for _, b := range nodes[2].Brokers() {
		if b.Down {
			t.Fatalf("broker %d Down without a detector", b.NodeID)
		}
	}
}
