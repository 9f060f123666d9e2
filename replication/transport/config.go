package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Config holds the Mux's tunables. Build one with DefaultConfig, set
// Advertise, and check it with Validate.
type Config struct {
	// Advertise is this node's Raft address as its peers know it: what
	// every group's LocalAddr returns and what peers put in their raft
	// configurations. Required.
	Advertise raft.ServerAddress

	// Timeout bounds each RPC from send to response, a dial, and the wait
	// for a local group to take or answer an incoming RPC. An
	// InstallSnapshot gets Timeout per SnapshotTimeoutScale bytes, at least
	// one Timeout, and at least Timeout after each ReadLog its receiver's
	// restore makes of the sender's log (restore_wait.go). Default 5s.
	Timeout time.Duration

	// MaxFrameSize is the largest frame, in bytes, sent or accepted; an
	// AppendEntries larger than this fails without touching the connection,
	// and a peer announcing a larger frame is disconnected before anything
	// is allocated. Default 64 MiB.
	MaxFrameSize int

	// MaxInFlight is the pipeline window: AppendEntries requests a group may
	// have outstanding to one peer at once on a pipeline (raft's
	// NetworkTransport calls it MaxRPCsInFlight, default 2). Default 4;
	// at least 1.
	MaxInFlight int

	// MaxSnapshotStreams is how many InstallSnapshot streams may run at once
	// to one peer, each on its own short-lived connection; more wait (within
	// Timeout). Default 2.
	MaxSnapshotStreams int

	// SnapshotTimeoutScale is the number of snapshot bytes per Timeout an
	// InstallSnapshot is given, as raft.NetworkTransport's TimeoutScale.
	// Default 256 KiB.
	SnapshotTimeoutScale int64

	// RedialBackoff is how long after a failed dial to a peer further RPCs
	// to it fail at once instead of dialling again. Default 100ms.
	RedialBackoff time.Duration

	// MaxQueuedPerGroup bounds the incoming RPCs queued for one group while
	// its raft is busy; beyond it an RPC is answered with ErrGroupBusy.
	// Default 1024.
	MaxQueuedPerGroup int

	// HeartbeatBatchWindow is how long a heartbeat may wait for others to
	// the same peer, to go in one frame with them (see
	// heartbeat_batch.go); 0 sends each in a frame of its own. It delays
	// a heartbeat by at most this, against raft's heartbeat timeout of
	// hundreds of milliseconds. Default 10ms.
	HeartbeatBatchWindow time.Duration

	// PeerFailureTimeout is how long a watched peer may stay silent (no
	// frame read from it on this node's connections to it, though the
	// failure detector pings it every PeerFailureTimeout/5) before it is
	// declared down, at once when a dial to it is refused (nothing
	// listens there) or a new connection to it is ended by the other side
	// before answering (a proxy on the link with nothing behind it); see
	// liveness.go. Groups learn of it through
	// Transport.SetPeerDownHandler. 0 turns the detector off. Default 2s:
	// a node stalled past a second on a loaded machine is not dead.
	PeerFailureTimeout time.Duration
}

// DefaultConfig returns the defaults documented on Config's fields, with no
// Advertise address.
func DefaultConfig() Config {
	return Config{
		Timeout:              5 * time.Second,
		MaxFrameSize:         64 << 20,
		MaxInFlight:          4,
		MaxSnapshotStreams:   2,
		SnapshotTimeoutScale: 256 << 10,
		RedialBackoff:        100 * time.Millisecond,
		MaxQueuedPerGroup:    1024,
		HeartbeatBatchWindow: 10 * time.Millisecond,
		PeerFailureTimeout:   2 * time.Second,
	}
}

// Validate reports the first field out of range.
func (c Config) Validate() error {
	switch {
	case c.Advertise == "":
		return errors.New("transport: Advertise is empty: set it to the address peers dial for this node")
	case c.Timeout <= 0:
		return fmt.Errorf("transport: Timeout %v must be positive", c.Timeout)
	case c.MaxFrameSize < 4096:
		return fmt.Errorf("transport: MaxFrameSize %d is below 4096 bytes", c.MaxFrameSize)
	case c.MaxInFlight < 1:
		return fmt.Errorf("transport: MaxInFlight %d must be at least 1", c.MaxInFlight)
	case c.MaxSnapshotStreams < 1:
		return fmt.Errorf("transport: MaxSnapshotStreams %d must be at least 1", c.MaxSnapshotStreams)
	case c.SnapshotTimeoutScale <= 0:
		return fmt.Errorf("transport: SnapshotTimeoutScale %d must be positive", c.SnapshotTimeoutScale)
	case c.RedialBackoff < 0:
		return fmt.Errorf("transport: RedialBackoff %v must not be negative", c.RedialBackoff)
	case c.HeartbeatBatchWindow < 0 || c.HeartbeatBatchWindow >= c.Timeout:
		return fmt.Errorf("transport: HeartbeatBatchWindow %v must be in [0, Timeout)", c.HeartbeatBatchWindow)
	case c.PeerFailureTimeout != 0 && c.PeerFailureTimeout < 5*time.Millisecond:
		return fmt.Errorf("transport: PeerFailureTimeout %v must be 0 (off) or at least 5ms", c.PeerFailureTimeout)
	case c.MaxQueuedPerGroup < 1:
		return fmt.Errorf("transport: MaxQueuedPerGroup %d must be at least 1", c.MaxQueuedPerGroup)
	}
	return nil
}

// Options carries the Mux's collaborators and test seams.
type Options struct {
	// DialAddress maps a peer's advertised Raft address to the address to
	// dial for it, so an operator or a test can put a proxy on any link.
	// Nil dials the advertised address.
	DialAddress func(raft.ServerAddress) string

	// Dial opens a connection to address (as returned by DialAddress). Nil
	// uses a net.Dialer over TCP. ctx carries the dial timeout.
	Dial func(ctx context.Context, address string) (net.Conn, error)

	// Logger receives lifecycle events and dropped connections. Nil means
	// zap.NewNop().
	Logger *zap.Logger
}
