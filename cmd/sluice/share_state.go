package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/consumergroup/sharestate"
	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/wire"
)

// sharePeers sends share-state requests to other nodes
// (sharestate.Peers). Writes are frequent (one per acknowledgement a
// share consumer sends), so it keeps one kgo client per peer, dialled on
// first use and kept (a kgo client keeps its connection open and
// pipelines concurrent requests on it); a peer whose registered address
// changes gets a new client.
type sharePeers struct {
	// brokers lists the registered brokers (the cluster view).
	brokers func() []replication.Broker

	mu      sync.Mutex
	closed  bool
	clients map[int32]*sharePeer
}

// sharePeer is the client of one peer, at addr.
type sharePeer struct {
	addr   string
	client *kgo.Client
}

var _ sharestate.Peers = (*sharePeers)(nil)

func newSharePeers(brokers func() []replication.Broker) *sharePeers {
	return &sharePeers{brokers: brokers, clients: make(map[int32]*sharePeer)}
}

// Request sends req to node with wire.PeerClientID, straight to the
// node's address (no metadata round trip).
func (p *sharePeers) Request(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error) {
	cl, err := p.client(node)
	if err != nil {
		return nil, err
	}
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("client of node %d has no broker", node)
	}
	return seeds[0].Request(ctx, req)
}

// client returns the client of node, created at its registered address.
func (p *sharePeers) client(node int32) (*kgo.Client, error) {
	addr := ""
	for _, b := range p.brokers() {
		if b.NodeID == node {
			addr = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
			break
		}
	}
	if addr == "" {
		return nil, fmt.Errorf("node %d is not registered", node)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("share-state peers closed")
	}
	old, ok := p.clients[node]
	if ok && old.addr == addr {
		p.mu.Unlock()
		return old.client, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(wire.PeerClientID))
	if err != nil {
		p.mu.Unlock()
		return nil, fmt.Errorf("client for node %d at %s: %w", node, addr, err)
	}
	p.clients[node] = &sharePeer{addr: addr, client: cl}
	p.mu.Unlock()
	if ok {
		// The node moved: its requests in flight answer with an error
		// the persister retries. Closed outside p.mu: Close waits
		// for them.
		old.client.Close()
	}
	return cl, nil
}

// Close closes every client; later requests fail.
func (p *sharePeers) Close() {
	p.mu.Lock()
	clients := p.clients
	p.clients, p.closed = nil, true
	p.mu.Unlock()
	for _, c := range clients {
		c.client.Close()
	}
}
