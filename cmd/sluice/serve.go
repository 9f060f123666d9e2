package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/sluice-io/sluice/cmd/sluice/admin"
	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/consumergroup/sharestate"
	"github.com/sluice-io/sluice/consumergroup/txn"
	"github.com/sluice-io/sluice/log"
	"github.com/sluice-io/sluice/replication"
	"github.com/sluice-io/sluice/wire"
)

// shutdownTimeout bounds the graceful part of shutdown: answering in-flight
// requests, then syncing and closing every log.
const shutdownTimeout = 30 * time.Second

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the broker until SIGINT or SIGTERM",
		Long: "Run the broker until SIGINT or SIGTERM.\n\n" +
			"Every setting is read from, in order of precedence: a --kebab-case flag, a\n" +
			"SLUICE_UPPER_SNAKE environment variable, the YAML file named by --config\n" +
			"(keys lower.dotted, e.g. data.dir) and the default shown below.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := newViper(cmd.Flags())
			if err != nil {
				return err
			}
			cfg, err := loadConfig(v)
			if err != nil {
				return err
			}
			logger, err := newLogger(cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return err
			}
			defer func() { _ = logger.Sync() }()

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, stop, cfg, logger)
		},
	}
	addFlags(cmd.Flags())
	return cmd
}

// serve runs the broker until ctx is done, then shuts it down gracefully.
// stopSignals is called once shutdown starts, so that a second signal kills
// the process the default way.
func serve(ctx context.Context, stopSignals func(), cfg config, logger *zap.Logger) error {
	soft, known := raiseOpenFileLimit(logger)
	sealedFiles := sealedFilesLimit(cfg.MaxOpenSealedFiles, soft, known)
	if known {
		if err := checkOpenFiles(cfg.Replication.DataDir, soft, sealedFiles); err != nil {
			return err
		}
	}
	// Set before any log opens: every log shares the process's cache.
	log.DefaultFileCache.SetLimit(sealedFiles)
	logger.Info("sealed segment file cache", zap.Int("max-open-sealed-files", sealedFiles),
		zap.Bool("derived-from-open-file-limit", cfg.MaxOpenSealedFiles == 0))
	// Bind first: a port in use fails before any data is touched, and
	// listen port 0 advertises the port actually bound.
	listener, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (config listen): %w", cfg.Listen, err)
	}
	defer listener.Close()
	if !cfg.AdvertisedExplicit {
		if err := cfg.Replication.SetAdvertisedAddress(defaultAdvertisedAddress(listener.Addr().String())); err != nil {
			return err
		}
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}

	// The admin listener comes up before the data is loaded: /healthz
	// answers at once and /readyz says what it waits for.
	metrics := admin.NewMetrics(version)
	var ready admin.Readiness
	dataLoaded := admin.NewFlag("loading the data dir")
	serving := admin.NewFlag("the Kafka listener is not serving")
	ready.Add("data", dataLoaded.Check)
	ready.Add("serving", serving.Check)
	adm, err := startAdmin(cfg.Admin, metrics, &ready, logger)
	if err != nil {
		return err
	}
	stopAdmin := func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = adm.stop(ctx)
	}

	started := time.Now()
	raftNet, err := startRaft(&cfg, logger)
	if err != nil {
		stopAdmin()
		return err
	}
	metaTransport, err := raftNet.metaTransport()
	if err != nil {
		_ = raftNet.close()
		stopAdmin()
		return err
	}
	ropts := replication.Options{Logger: logger, SyncObserver: metrics.ObserveSync, Transport: metaTransport, GroupTransport: raftNet.groupTransport(),
		Peers: peerClient{self: cfg.Replication.NodeID}}
	if raftNet != nil {
		// Metadata, DescribeCluster and FindCoordinator leave out the
		// brokers the Mux's failure detector holds down.
		ropts.Liveness = raftNet.mux
	}
	if cfg.FaultInjection {
		faults := log.NewFaultFS(nil)
		ropts.FS = faults
		adm.server.Handle("/debug/fault", admin.FaultHandler(faults, logger))
		logger.Warn("debug.fault.injection is on: /debug/fault on the admin listener breaks this node's disk on demand; never use it in production")
	}
	cluster, err := replication.Open(cfg.Replication, ropts)
	if err != nil {
		_ = raftNet.close()
		stopAdmin()
		return fmt.Errorf("open data dir %s: %w", cfg.Replication.DataDir, err)
	}
	groups, err := consumergroup.New(cluster, cfg.Groups, consumergroup.Options{Logger: logger})
	if err != nil {
		_ = cluster.Close(context.Background())
		_ = raftNet.close()
		stopAdmin()
		return fmt.Errorf("start group coordinator: %w", err)
	}
	txns, err := txn.New(cluster, cfg.Transactions, txn.Options{Logger: logger})
	if err != nil {
		_ = groups.Close(context.Background())
		_ = cluster.Close(context.Background())
		_ = raftNet.close()
		stopAdmin()
		return fmt.Errorf("start transaction coordinator: %w", err)
	}
	shareCoordinator, err := sharestate.New(cluster, cfg.ShareState, sharestate.Options{Logger: logger})
	if err != nil {
		_ = txns.Close(context.Background())
		_ = groups.Close(context.Background())
		_ = cluster.Close(context.Background())
		_ = raftNet.close()
		stopAdmin()
		return fmt.Errorf("start share coordinator: %w", err)
	}
	// shareStates is this node's share-state Persister: the local share
	// coordinator for the keys it leads, the others' over the Kafka
	// protocol (a kgo client per peer).
	sharePeerClients := newSharePeers(cluster.Brokers)
	shareStates := sharestate.NewRouter(shareCoordinator, sharePeerClients, sharestate.RouterOptions{Logger: logger})
	// Share group admin (offsets, delete) reads and resets states through
	// it.
	groups.SetShareStates(shareStateStore{persister: shareStates, cluster: cluster, self: cfg.Replication.NodeID, peers: sharePeerClients})
	if cfg.DebugShareState && adm.server != nil {
		logger.Warn("debug.share.state is on: /debug/share-state on the admin listener reads and writes share-partition states; never use it in production")
		adm.server.Handle(admin.ShareStatePath, admin.ShareStateHandler(shareStates))
	}
	shares, deadLetters := newShares(cfg, cluster, shareStates, logger)
	wopts := wire.Options{Logger: logger, Groups: groups, Transactions: txns, ShareState: shareCoordinator, Observer: metrics}
	if shares != nil {
		wopts.Shares = shares
	}
	server := wire.NewServer(cluster, cfg.Wire, wopts)
	// The coordinator writes transaction markers through the server
	// (local leaders directly, others with WriteTxnMarkers).
	txns.SetMarkerWriter(server)
	// Partition leaders report their elections to the metadata leader
	// through the server's forwarding client.
	cluster.SetLeaderReports(server.ReportLeaders)
	partitions := admin.ClusterPartitions(cluster)
	stuck := consumergroup.NewStuckDetector(groups.Stats, clusterHighWatermark(cluster), cfg.Groups, logger, nil)
	stuck.Start(stuckCheckInterval)
	defer stuck.Stop()
	if adm.server != nil {
		adm.server.Handle("GET "+admin.StuckPath, admin.StuckHandler(stuck.Check))
	}
	if err := metrics.Register(
		admin.NewLogCollector(partitions),
		admin.NewGroupCollector(groups.Stats, partitions, nil),
		admin.NewStuckCollector(stuck.Check),
		admin.NewConnectionCollector(server.Stats),
		admin.NewQuotaCollector(server.Stats),
		admin.NewFlushCollector(cluster.FlushStats),
		admin.NewFileCacheCollector(log.DefaultFileCache.Stats),
		admin.NewStorageCollector(cluster),
	); err != nil {
		sharePeerClients.Close()
		_ = shareCoordinator.Close(context.Background())
		_ = txns.Close(context.Background())
		_ = groups.Close(context.Background())
		_ = cluster.Close(context.Background())
		_ = raftNet.close()
		stopAdmin()
		return err
	}
	ready.Add("storage", admin.StorageCheck(cluster))
	dataLoaded.Set(true)

	serveDone := make(chan error, 1)
	go func() { serveDone <- server.Serve(listener) }()
	serving.Set(true)
	logger.Info("listening",
		zap.String("listen", listener.Addr().String()),
		zap.String("advertised", net.JoinHostPort(cfg.Replication.AdvertisedHost, fmt.Sprint(cfg.Replication.AdvertisedPort))),
		zap.String("admin-listen", adm.addr),
		zap.String("data-dir", cfg.Replication.DataDir),
		zap.Int32("node-id", cfg.Replication.NodeID),
		zap.String("raft-address", cfg.Replication.RaftAddress),
		zap.Duration("flush-interval", cfg.Replication.Flush.Interval),
		zap.Duration("took", time.Since(started)),
		zap.String("version", version),
	)

	select {
	case <-ctx.Done():
		logger.Info("shutting down", zap.String("reason", context.Cause(ctx).Error()))
	case err := <-serveDone:
		// Serve returns before Shutdown only on an accept failure; the
		// error is returned below, not logged here.
		serveDone <- err
		logger.Info("shutting down", zap.String("reason", "listener failed"))
	}
	stopSignals()
	serving.Set(false) // /readyz: stop sending traffic here

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	began := time.Now()
	var errs []error
	if err := server.Shutdown(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("shut down protocol server: %w", err))
	}
	if err := <-serveDone; err != nil && !errors.Is(err, wire.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serve %s: %w", listener.Addr(), err))
	}
	// No request uses the share-partitions any more: stop their lock
	// timers before the partitions close.
	if shares != nil {
		shares.Close()
		deadLetters.Close()
	}
	// The admin listener stays up while requests drain, so the last
	// scrape sees them; it goes before the data is closed.
	if err := adm.stop(shutdownCtx); err != nil {
		errs = append(errs, err)
	}
	// The coordinator writes to __consumer_offsets: close it before the
	// cluster that holds that topic, after the stuck detector that reads it.
	stuck.Stop()
	// The transaction coordinator writes markers through the server,
	// closed above, into __consumer_offsets among others: it goes first.
	if err := txns.Close(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("close transaction coordinator: %w", err))
	}
	// The share coordinator writes to __share_group_state; the peers'
	// clients serve the server's share-partitions, shut down above.
	sharePeerClients.Close()
	if err := shareCoordinator.Close(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("close share coordinator: %w", err))
	}
	if err := groups.Close(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("close group coordinator: %w", err))
	}
	if err := cluster.Close(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("close data dir %s: %w", cfg.Replication.DataDir, err))
	}
	// Every Raft group on the Mux is closed with the cluster.
	if err := raftNet.close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft listener: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("shutdown complete", zap.Duration("took", time.Since(began)))
	return nil
}
