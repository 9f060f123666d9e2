package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/replication"
)

// forwardClientPrefix starts the client id of the requests a node
// forwards to the metadata leader ("sluice-forward-<node id>"). This is
// KIP-590's forwarding without its Envelope (Sluice has no principals to
// carry). A request with this client id is never forwarded again, so no
// request loops between nodes whose views of the leader differ: a node
// that is no longer the leader answers it NOT_CONTROLLER, which the
// client retries. Only such requests may take producer id blocks
// (AllocateProducerIds) and see the internal APIs in ApiVersions.
const forwardClientPrefix = "sluice-forward-"

// defaultForwardTimeout bounds a forward whose request carries no
// timeout (AlterConfigs, IncrementalAlterConfigs, the auto-create of
// Metadata, a producer id block), as request.timeout.ms's default does in
// Kafka's clients.
const defaultForwardTimeout = 30 * time.Second

var (
	// errForwarderClosed reports a forward after Shutdown.
	errForwarderClosed = errors.New("wire: forwarder closed")
)

// forwarder holds the Kafka client a node forwards admin requests with.
// The client is made on first use, seeded with every registered broker;
// it learns the leader's address from their Metadata and keeps one
// connection per node it talks to. Safe for concurrent use.
type forwarder struct {
	// mu guards the fields below.
	mu     sync.Mutex
	closed bool
	client *kgo.Client
}

// kafkaClient returns the forwarding client, making it on first use.
func (f *forwarder) kafkaClient(self int32, brokers []replication.Broker) (*kgo.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errForwarderClosed
	}
	if f.client != nil {
		return f.client, nil
	}
	seeds := make([]string, 0, len(brokers))
	for _, b := range brokers {
		seeds = append(seeds, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("wire: no broker registered to forward to: %w", kerr.NotController)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID(forwardClientPrefix+strconv.Itoa(int(self))))
	if err != nil {
		return nil, fmt.Errorf("wire: forwarding client: %w", err)
	}
	f.client = cl
	return cl, nil
}

// close closes the client; later forwards fail with errForwarderClosed.
func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.client != nil {
		f.client.Close()
		f.client = nil
	}
}

// isForwarded reports whether the request a handler answers was
// forwarded by another node (its client id has forwardClientPrefix).
func isForwarded(ctx context.Context) bool {
	return strings.HasPrefix(requestClientFrom(ctx).id, forwardClientPrefix)
}

// forwardTarget returns the metadata leader to forward the request to:
// false for a forwarded request, while no leader is known, or when the
// leader named is this node (its leadership is moving); the client then
// gets NOT_CONTROLLER and retries.
func (s *Server) forwardTarget(ctx context.Context) (int32, bool) {
	if isForwarded(ctx) {
		return -1, false
	}
	leader := s.cluster.ControllerID()
	if leader < 0 || leader == s.cluster.NodeID() {
		return -1, false
	}
	return leader, true
}

// forwardContext bounds a forward by the request's timeout (ms; <= 0
// means defaultForwardTimeout) and by the start of Shutdown.
func (s *Server) forwardContext(ctx context.Context, timeoutMillis int32) (context.Context, context.CancelFunc) {
	timeout := defaultForwardTimeout
	if timeoutMillis > 0 {
		timeout = time.Duration(timeoutMillis) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	ctx, stop := s.untilDrained(ctx)
	return ctx, func() { stop(); cancel() }
}

// forward sends req to node leader and returns its response, of req's
// kind, at the highest version both speak. The caller copies what it
// needs into its own response (of the client's version).
func (s *Server) forward(ctx context.Context, leader int32, req kmsg.Request) (kmsg.Response, error) {
	cl, err := s.forwarder.kafkaClient(s.cluster.NodeID(), s.cluster.Brokers())
	if err != nil {
		return nil, err
	}
	resp, err := cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("forward %s to the metadata leader, node %d: %w", kmsg.NameForKey(req.Key()), leader, err)
	}
	return resp, nil
}

// notControllerItems returns the indexes in [0, n) whose error code is
// NOT_CONTROLLER: what this node could not do because it is not the
// metadata leader.
func notControllerItems(n int, code func(i int) int16) []int {
	var idx []int
	for i := range n {
		if code(i) == kerr.NotController.Code {
			idx = append(idx, i)
		}
	}
	return idx
}

// forwardFailed logs a forward that failed; the items keep their
// NOT_CONTROLLER, which clients retry.
func (s *Server) forwardFailed(err error) {
	s.logger.Debug("forward to the metadata leader failed", zap.Error(err))
}
