package test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/consumergroup/share"
	"github.com/sluice-io/sluice/consumergroup/sharestate"
	"github.com/sluice-io/sluice/consumergroup/txn"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/wire"
)

// testTimeout bounds any single wait in a test; a healthy server answers in
// far less.
const testTimeout = 60 * time.Second

// serverConfig is what startServer configures; tests adjust it with
// options.
type serverConfig struct {
	Replication replication.Config
	Wire        wire.Config
	// Groups configures the group coordinator; NoGroups runs none (the
	// group APIs are then not served).
	Groups   consumergroup.Config
	NoGroups bool
	// Transactions configures the transaction coordinator, which runs
	// with the group coordinator (not with NoGroups).
	Transactions txn.Config
	// ShareState configures the share coordinator (run with the group
	// coordinator).
	ShareState sharestate.Config
	// Logger; nil means a zaptest logger at warn level.
	Logger *zap.Logger
	// Observer and SyncObserver, if set, receive the server's metrics
	// hooks (wire.Options.Observer, replication.Options.SyncObserver).
	Observer     wire.Observer
	SyncObserver log.SyncObserver
}

// serverOption changes the configuration of a test server.
type serverOption func(*serverConfig)

// withAutoCreate sets auto.create.topics.enable.
func withAutoCreate(enabled bool) serverOption {
	return func(c *serverConfig) { c.Replication.AutoCreateTopics = enabled }
}

// withMaxRequestBytes sets socket.request.max.bytes.
func withMaxRequestBytes(n int32) serverOption {
	return func(c *serverConfig) { c.Wire.MaxRequestBytes = n }
}

// testGroupsConfig is the coordinator configuration of test servers:
// short session timeouts allowed and no initial rebalance delay, so group
// tests stay fast.
func testGroupsConfig() consumergroup.Config {
	return consumergroup.Config{
		OffsetsTopicPartitions: 4,
		MinSessionTimeout:      500 * time.Millisecond,
		MaxSessionTimeout:      5 * time.Minute,
		InitialRebalanceDelay:  0,
		MaxGroupSize:           1 << 20,
		OffsetsRetention:       7 * 24 * time.Hour,
	}
}

// testTransactionsConfig is the transaction coordinator configuration of
// test servers: few __transaction_state partitions.
// testShareStateConfig is the share coordinator's configuration in
// tests: 4 partitions of __share_group_state, each a Raft group opened
// at start.
func testShareStateConfig() sharestate.Config {
	cfg := sharestate.DefaultConfig()
	cfg.StateTopicPartitions = 4
	return cfg
}

func testTransactionsConfig() txn.Config {
	cfg := txn.DefaultConfig()
	cfg.StateTopicPartitions = 4
	return cfg
}

// withTransactions changes the transaction coordinator's configuration.
func withTransactions(change func(*txn.Config)) serverOption {
	return func(c *serverConfig) { change(&c.Transactions) }
}

// withDataDir stores the server's data in dir instead of a t.TempDir.
func withDataDir(dir string) serverOption {
	return func(c *serverConfig) { c.Replication.DataDir = dir }
}

// withObservers installs the metrics hooks.
func withObservers(o wire.Observer, sync log.SyncObserver) serverOption {
	return func(c *serverConfig) { c.Observer, c.SyncObserver = o, sync }
}

// withLogger replaces the server's logger.
func withLogger(l *zap.Logger) serverOption {
	return func(c *serverConfig) { c.Logger = l }
}

// testServer is a Sluice node running in this process on a real TCP
// listener: replication.Open, then wire.NewServer serving the listener.
type testServer struct {
	tb     testing.TB
	config serverConfig
	// Addr is host:port of the listener; it stays the same across restart.
	Addr string

	Cluster *replication.Cluster
	Groups  *consumergroup.Coordinator // nil with NoGroups
	txns    *txn.Coordinator           // nil with NoGroups
	// ShareState is the share coordinator, nil with NoGroups.
	ShareState *sharestate.Coordinator
	// shares serves ShareFetch and ShareAcknowledge, nil with NoGroups.
	shares    *share.Manager
	server    *wire.Server
	listener  net.Listener
	serveDone chan error
	running   bool
}

// startServer starts an in-process server on 127.0.0.1 with an ephemeral
// port and a fresh data directory; t.Cleanup stops it.
func startServer(tb testing.TB, opts ...serverOption) *testServer {
	tb.Helper()
	cfg := serverConfig{
		Replication:  replication.DefaultConfig(),
		Wire:         wire.DefaultConfig(),
		Groups:       testGroupsConfig(),
		Transactions: testTransactionsConfig(),
		ShareState:   testShareStateConfig(),
	}
	cfg.Replication.DataDir = tb.TempDir()
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(tb, zaptest.Level(zap.WarnLevel))
	}
	s := &testServer{tb: tb, config: cfg}
	s.start("127.0.0.1:0")
	tb.Cleanup(func() {
		if s.running {
			s.stop()
		}
	})
	return s
}

// start listens on addr, advertises the bound address, opens the data dir
// and serves in a goroutine.
func (s *testServer) start(addr string) {
	s.tb.Helper()
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		s.tb.Fatalf("listen on %s: %v", addr, err)
	}
	cfg := s.config
	if err := cfg.Replication.SetAdvertisedAddress(listener.Addr().String()); err != nil {
		listener.Close()
		s.tb.Fatal(err)
	}
	if err := errors.Join(cfg.Replication.Validate(), cfg.Wire.Validate()); err != nil {
		listener.Close()
		s.tb.Fatalf("invalid test server config: %v", err)
	}
	cluster, err := replication.Open(cfg.Replication, replication.Options{Logger: cfg.Logger.Named("replication"), SyncObserver: cfg.SyncObserver})
	if err != nil {
		listener.Close()
		s.tb.Fatalf("replication.Open(%s): %v", cfg.Replication.DataDir, err)
	}
	s.Cluster = cluster
	wireOpts := wire.Options{Logger: cfg.Logger.Named("wire"), Observer: cfg.Observer}
	s.Groups, s.txns, s.ShareState = nil, nil, nil
	if !cfg.NoGroups {
		groups, err := consumergroup.New(cluster, cfg.Groups, consumergroup.Options{Logger: cfg.Logger.Named("consumergroup")})
		if err != nil {
			listener.Close()
			_ = cluster.Close(context.Background())
			s.tb.Fatalf("consumergroup.New: %v", err)
		}
		s.Groups, wireOpts.Groups = groups, groups
		txns, err := txn.New(cluster, cfg.Transactions, txn.Options{Logger: cfg.Logger.Named("txn")})
		if err != nil {
			listener.Close()
			_ = groups.Close(context.Background())
			_ = cluster.Close(context.Background())
			s.tb.Fatalf("txn.New: %v", err)
		}
		s.txns, wireOpts.Transactions = txns, txns
		shareState, err := sharestate.New(cluster, cfg.ShareState, sharestate.Options{Logger: cfg.Logger.Named("sharestate")})
		if err != nil {
			listener.Close()
			_ = txns.Close(context.Background())
			_ = groups.Close(context.Background())
			_ = cluster.Close(context.Background())
			s.tb.Fatalf("sharestate.New: %v", err)
		}
		s.ShareState, wireOpts.ShareState = shareState, shareState
		// One node: the share-state router needs no peers.
		router := sharestate.NewRouter(shareState, nil, sharestate.RouterOptions{Logger: cfg.Logger.Named("sharestate")})
		var groupConfigs share.GroupConfigs = share.DefaultGroupConfigs{}
		if gc, ok := any(cluster).(share.GroupConfigs); ok {
			groupConfigs = gc
		}
		s.shares = share.NewManager(share.DefaultConfig(), cluster.NodeID(), router, groupConfigs, share.Options{Logger: cfg.Logger.Named("share")})
		wireOpts.Shares = s.shares
	}
	s.server = wire.NewServer(cluster, cfg.Wire, wireOpts)
	if s.txns != nil {
		s.txns.SetMarkerWriter(s.server)
	}
	s.listener = listener
	s.Addr = listener.Addr().String()
	s.serveDone = make(chan error, 1)
	go func(server *wire.Server, done chan<- error) { done <- server.Serve(listener) }(s.server, s.serveDone)
	s.running = true
}

// stop shuts the server down gracefully: Shutdown, wait for Serve to
// return ErrServerClosed, then close the cluster (every log synced).
func (s *testServer) stop() {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s.running = false
	if err := s.server.Shutdown(ctx); err != nil {
		s.tb.Errorf("wire Shutdown: %v", err)
	}
	select {
	case err := <-s.serveDone:
		if !errors.Is(err, wire.ErrServerClosed) {
			s.tb.Errorf("Serve returned %v, want wire.ErrServerClosed", err)
		}
	case <-ctx.Done():
		s.tb.Errorf("Serve did not return after Shutdown")
	}
	if s.shares != nil {
		s.shares.Close()
	}
	if s.ShareState != nil {
		if err := s.ShareState.Close(ctx); err != nil {
			s.tb.Errorf("share coordinator Close: %v", err)
		}
	}
	if s.txns != nil {
		if err := s.txns.Close(ctx); err != nil {
			s.tb.Errorf("transaction coordinator Close: %v", err)
		}
	}
	if s.Groups != nil {
		if err := s.Groups.Close(ctx); err != nil {
			s.tb.Errorf("group coordinator Close: %v", err)
		}
	}
	if err := s.Cluster.Close(ctx); err != nil {
		s.tb.Errorf("cluster Close: %v", err)
	}
}

// restart shuts the server down gracefully and starts it again on the same
// data directory and the same address, so clients reconnect unchanged.
func (s *testServer) restart() {
	s.tb.Helper()
	s.stop()
	s.start(s.Addr)
}

// DataDir is where the server keeps its data.
func (s *testServer) DataDir() string { return s.config.Replication.DataDir }

// onDiskTempDir returns a temporary directory on a real disk (not tmpfs),
// for benchmarks that measure fsync: under $SLUICE_BENCH_DIR if set, else
// /var/tmp, else the default temp dir.
func onDiskTempDir(tb testing.TB) string {
	tb.Helper()
	parent := os.Getenv("SLUICE_BENCH_DIR")
	if parent == "" {
		if st, err := os.Stat("/var/tmp"); err == nil && st.IsDir() {
			parent = "/var/tmp"
		}
	}
	dir, err := os.MkdirTemp(parent, "sluice-bench-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Clean(dir)
}
