package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/cmd/sluice/admin"
	"github.com/sluice-io/sluice/consumergroup"
	"github.com/sluice-io/sluice/replication"
)

// adminListener is the running HTTP admin server of `sluice serve`, or a
// no-op when admin.listen is empty.
type adminListener struct {
	server *admin.Server
	addr   string
	done   chan error // Serve's result
}

// startAdmin binds cfg.Listen and serves the admin endpoints in a
// goroutine that stop waits for. It is called before the data dir is
// loaded, so /healthz answers and /readyz reports "not ready" meanwhile.
func startAdmin(cfg admin.Config, metrics *admin.Metrics, ready *admin.Readiness, logger *zap.Logger) (*adminListener, error) {
	if !cfg.Enabled() {
		return &adminListener{}, nil
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (config admin.listen; empty turns the admin listener off): %w", cfg.Listen, err)
	}
	a := &adminListener{
		server: admin.New(cfg, metrics.Registry(), ready, logger),
		addr:   l.Addr().String(),
		done:   make(chan error, 1),
	}
	go func() { a.done <- a.server.Serve(l) }()
	logger.Info("admin listening", zap.String("admin-listen", a.addr), zap.Bool("pprof", cfg.Pprof))
	return a, nil
}

// stop shuts the admin server down and waits for its goroutine.
func (a *adminListener) stop(ctx context.Context) error {
	if a.server == nil {
		return nil
	}
	var errs []error
	if err := a.server.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down admin server: %w", err))
	}
	if err := <-a.done; err != nil && !errors.Is(err, admin.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serve admin %s: %w", a.addr, err))
	}
	return errors.Join(errs...)
}

// stuckCheckInterval is how often the broker looks for stuck consumer
// groups when nothing asks (metric scrapes and the admin endpoint look at
// once), so that the warning is logged without a scraper.
const stuckCheckInterval = 10 * time.Second

// clusterHighWatermark reads a partition's high watermark from this
// node's replica, led here or not (unknown topic or partition, or no
// replica here: not ok).
func clusterHighWatermark(cluster *replication.Cluster) consumergroup.HighWatermark {
	return func(topic string, index int32) (int64, bool) {
		t, ok := cluster.Topic(topic)
		if !ok || index < 0 || index >= t.PartitionCount() {
			return 0, false
		}
		o, ok := t.Partition(index).LocalOffsets()
		return o.HighWatermark, ok
	}
}
