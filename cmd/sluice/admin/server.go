package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("admin: server closed")

// readHeaderTimeout bounds how long a client may take to send request
// headers, so idle or slow connections cannot pile up.
const readHeaderTimeout = 10 * time.Second

// Server is the HTTP admin listener:
//
//	/metrics        Prometheus text exposition of the registry
//	/healthz        200 "ok" while the process runs
//	/readyz         200 when every readiness check passes, else 503 and
//	                one line per check
//	/debug/pprof/   the Go profiler, only with Config.Pprof
//	/v1/groups/stuck  stuck consumer group partitions as JSON (StuckHandler)
//	/debug/fault    disk fault injection (FaultHandler), only with
//	                debug.fault.injection
//
// Serve and Shutdown follow net/http.Server. Safe for concurrent use.
type Server struct {
	http   *http.Server
	mux    *http.ServeMux
	logger *zap.Logger
}

// New returns a server exposing gatherer's metrics and ready's checks. A
// nil logger means nop.
func New(cfg Config, gatherer prometheus.Gatherer, ready *Readiness, logger *zap.Logger) *Server {
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("admin")
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:      zapPrintln{logger},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, results := ready.Check()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		var b strings.Builder
		for _, r := range results {
			if r.Err == nil {
				fmt.Fprintf(&b, "[+] %s ok\n", r.Name)
			} else {
				fmt.Fprintf(&b, "[-] %s: %v\n", r.Name, r.Err)
			}
		}
		if ok {
			b.WriteString("ready\n")
		} else {
			b.WriteString("not ready\n")
		}
		fmt.Fprint(w, b.String())
	})
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &Server{
		http: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: readHeaderTimeout,
			ErrorLog:          zap.NewStdLog(logger.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
		},
		mux:    mux,
		logger: logger,
	}
}

// Handle adds an endpoint (FaultHandler's /debug/fault); it may be called
// while the server serves.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Serve answers HTTP requests on l until Shutdown; it returns
// ErrServerClosed after Shutdown and the accept error otherwise.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown closes the listeners, waits for requests in progress (a CPU
// profile may run for its whole duration) until ctx ends, then closes what
// is left. It returns ctx's error if it had to cut requests short.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	return err
}

// zapPrintln adapts a zap logger to promhttp's Println logger.
type zapPrintln struct{ logger *zap.Logger }

func (z zapPrintln) Println(v ...any) {
	z.logger.Warn("metrics scrape error", zap.String("error", strings.TrimSpace(fmt.Sprintln(v...))))
}
