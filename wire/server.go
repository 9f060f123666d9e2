package wire

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("wire: server closed")

// Server answers Kafka protocol requests on the listeners given to Serve.
// Safe for concurrent use.
type Server struct {
	cluster Cluster
	groups  GroupCoordinator // nil: group APIs are not served
	// txns is the transaction coordinator; nil: transaction APIs are not
	// served. Set only with groups.
	txns TransactionCoordinator
	// shares serves share groups' ShareFetch and ShareAcknowledge; nil:
	// they are not served. Set only with groups.
	shares ShareGroups
	// shareState is the share coordinator; nil: the share-state APIs
	// are not served.
	shareState ShareStateCoordinator
	observer   Observer // nil: nothing is observed
	cfg        Config
	logger     *zap.Logger
	sessions   *fetchSessions
	// buffers lends request frames, fetch read buffers and response
	// buffers to every connection (buffers.go).
	buffers *bufferPool
	// budget bounds the memory of requests being read or answered and of
	// fetch responses (budget.go); nil is unlimited.
	budget *memoryBudget
	// quotas measures clients against their client quotas (quota.go).
	quotas *quotaManager
	// forwarder sends admin requests to the metadata leader
	// (forward.go); Shutdown closes it once no handler runs.
	forwarder forwarder

	// ctx ends when Shutdown gives up waiting: every connection's waits
	// (acks, long polls) end with it.
	ctx    context.Context
	cancel context.CancelFunc
	// drain ends when Shutdown starts: waits that may last as long as a
	// long poll or a rebalance (Fetch MinBytes, JoinGroup, SyncGroup)
	// answer at once instead of holding shutdown up. Waits for durability
	// (acks, commits) are short and go on.
	drain      context.Context
	startDrain context.CancelFunc

	// mu guards the fields below.
	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	// wg counts connection goroutines and Serve loops.
	wg sync.WaitGroup

	// accepted counts the connections ever started (Stats).
	accepted atomic.Int64
}

// Stats are a server's connection counts, for metrics.
type Stats struct {
	// OpenConnections is the number of client connections open now.
	OpenConnections int
	// AcceptedConnections counts the connections accepted since NewServer.
	AcceptedConnections int64
	// RequestMemory is the request memory budget (queued.max.request.bytes).
	RequestMemory BudgetStats
	// Quotas counts client quota throttling.
	Quotas QuotaStats
}

// Stats returns the server's connection counts. Safe for concurrent use.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	open := len(s.conns)
	s.mu.Unlock()
	return Stats{OpenConnections: open, AcceptedConnections: s.accepted.Load(), RequestMemory: s.budget.stats(), Quotas: s.quotas.stats()}
}

// NewServer returns a server over the cluster (a *replication.Cluster in
// production; see ClusterOf). cfg must have passed Validate.
func NewServer[T TopicOf[P], P Partition](cluster ClusterOf[T, P], cfg Config, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	drain, startDrain := context.WithCancel(context.Background())
	return &Server{
		cluster:    viewCluster(cluster),
		groups:     opts.Groups,
		txns:       transactionsWith(opts),
		shares:     sharesWith(opts),
		shareState: opts.ShareState,
		observer:   opts.Observer,
		cfg:        cfg,
		logger:     opts.Logger.Named("wire"),
		sessions:   newFetchSessions(cfg.MaxFetchSessions),
		buffers:    newBufferPool(cfg.BufferPoolBytes),
		budget:     newMemoryBudget(cfg.QueuedMaxRequestBytes),
		quotas:     newQuotaManager(),
		ctx:        ctx,
		cancel:     cancel,
		drain:      drain,
		startDrain: startDrain,
		listeners:  make(map[net.Listener]struct{}),
		conns:      make(map[*conn]struct{}),
	}
}

// Serve accepts connections on l until Shutdown; it returns ErrServerClosed
// after Shutdown and any other accept error otherwise. Temporary accept
// errors are retried with backoff.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger.Warn("accept failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
				select {
				case <-time.After(backoff):
					continue
				case <-s.ctx.Done():
					return ErrServerClosed
				}
			}
			return err
		}
		backoff = 0
		s.startConn(nc)
	}
}

// startConn registers and starts a connection, unless the server is
// shutting down.
func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.accepted.Add(1)
	s.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

// serves reports whether this server serves a row of the dispatch table:
// group APIs need a group coordinator, transaction APIs a transaction
// coordinator, share-state APIs a share coordinator.
func (s *Server) serves(a *api) bool {
	return a != nil && (!a.groups || s.groups != nil) && (!a.transactions || s.txns != nil) && (!a.shareState || s.shareState != nil) && (!a.shares || s.shares != nil)
}

// sharesWith returns the share groups of opts, nil without a group
// coordinator.
func sharesWith(opts Options) ShareGroups {
	if opts.Groups == nil {
		return nil
	}
	return opts.Shares
}

// transactionsWith returns the transaction coordinator of opts, nil
// without a group coordinator (its APIs need one).
func transactionsWith(opts Options) TransactionCoordinator {
	if opts.Groups == nil {
		return nil
	}
	return opts.Transactions
}

// forgetConn removes a finished connection.
func (s *Server) forgetConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, stops reading new requests, waits for
// requests already read to be answered (or ctx to end, after which their
// waits are cut short and connections closed) and for every goroutine to
// exit.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.startDrain()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	// Runs once every handler has returned (both ways out wait for done).
	defer s.forwarder.close()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// untilDrained returns ctx, ended also when Shutdown starts, for waits
// that must not hold shutdown up; call the stop func when done.
func (s *Server) untilDrained(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.drain, cancel)
	return ctx, func() { stop(); cancel() }
}
