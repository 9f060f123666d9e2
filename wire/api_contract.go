package wire

// CONTRACT FILE — replaced by the real implementation (server.go, config.go).

import (
	"context"
	"errors"
	"net"

	"go.uber.org/zap"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("wire: server closed")

// Config holds the protocol server's tunables.
type Config struct {
	// MaxRequestBytes bounds one request frame; a larger size prefix closes
	// the connection before anything is allocated. Corresponds to
	// socket.request.max.bytes. Default 100 MiB.
	MaxRequestBytes int32
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config { return Config{MaxRequestBytes: 100 << 20} }

// Validate reports a Config that cannot work.
func (c Config) Validate() error { panic("contract") }

// Options carries collaborators.
type Options struct {
	Logger *zap.Logger
}

// Server answers Kafka protocol requests on the listeners given to Serve.
type Server struct{}

// NewServer returns a server over the cluster (a *replication.Cluster in
// production).
func NewServer(cluster Cluster, cfg Config, opts Options) *Server { panic("contract") }

// Cluster is what the wire layer needs of the cluster.
type Cluster interface{}

// Serve accepts connections on l until Shutdown; it returns ErrServerClosed
// after Shutdown and any other accept error otherwise.
func (s *Server) Serve(l net.Listener) error { panic("contract") }

// Shutdown stops accepting, closes idle connections, waits for in-flight
// requests to be answered (or ctx to end) and for every goroutine to exit.
func (s *Server) Shutdown(ctx context.Context) error { panic("contract") }
