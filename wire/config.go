package wire

import (
	"fmt"

	"go.uber.org/zap"
)

// Config holds the protocol server's tunables.
type Config struct {
	// MaxRequestBytes bounds one request frame; a larger size prefix closes
	// the connection before anything is allocated. Corresponds to
	// socket.request.max.bytes. Default 100 MiB.
	MaxRequestBytes int32
	// MaxInFlight bounds the requests of one connection that are read but
	// not yet answered; the reader stops reading while it is reached, which
	// pushes back on a client that pipelines faster than requests complete.
	// Default 64.
	MaxInFlight int
	// MaxFetchSessions bounds the incremental fetch sessions (KIP-227) the
	// server keeps; the least recently used is evicted beyond it.
	// Corresponds to max.incremental.fetch.session.cache.slots. Default 1000.
	MaxFetchSessions int
	// BufferPoolBytes bounds the memory the server keeps, across all
	// connections, in idle buffers for reuse: request frames, the record
	// bytes fetches read and encoded responses. Buffers in use are not
	// counted (MaxInFlight and the request and fetch sizes bound them); a
	// buffer returned while the idle ones already add up to this is left to
	// the garbage collector. 0 disables reuse. Corresponds to no Kafka
	// setting (config socket.buffer.pool.bytes). Default 64 MiB.
	BufferPoolBytes int64
	// QueuedMaxRequestBytes bounds, across all connections, the memory of
	// requests read (or being read) and not yet answered and of fetch
	// responses read and not yet written. A connection that needs more
	// stops reading from its socket until memory is given back, so TCP
	// slows its client down. Memory is taken as a frame's bytes arrive,
	// not for its announced size. Small frames (up to 64 KiB: metadata,
	// heartbeats, commits) may use a reserve of 8 MiB above it, and one
	// frame at a time may finish beyond it so that partly read frames
	// never wait on each other for ever: the memory held stays below this
	// + socket.request.max.bytes + 8 MiB. -1 is unbounded. Corresponds to
	// queued.max.request.bytes (whose Kafka default, -1, is unbounded).
	// Default 256 MiB.
	QueuedMaxRequestBytes int64
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{MaxRequestBytes: 100 << 20, MaxInFlight: 64, MaxFetchSessions: 1000, BufferPoolBytes: 64 << 20, QueuedMaxRequestBytes: 256 << 20}
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	switch {
	case c.MaxRequestBytes < 1024:
		return fmt.Errorf("wire: socket.request.max.bytes %d is below 1024", c.MaxRequestBytes)
	case c.MaxInFlight < 1:
		return fmt.Errorf("wire: max in-flight requests %d must be at least 1", c.MaxInFlight)
	case c.MaxFetchSessions < 0:
		return fmt.Errorf("wire: max.incremental.fetch.session.cache.slots %d is negative", c.MaxFetchSessions)
	case c.QueuedMaxRequestBytes < -1 || (c.QueuedMaxRequestBytes >= 0 && c.QueuedMaxRequestBytes < 1<<20):
		return fmt.Errorf("wire: queued.max.request.bytes %d must be -1 (unbounded) or at least 1 MiB", c.QueuedMaxRequestBytes)
	case c.BufferPoolBytes < 0:
		return fmt.Errorf("wire: socket.buffer.pool.bytes %d is negative", c.BufferPoolBytes)
	}
	return nil
}

// Options carries collaborators.
type Options struct {
	// Logger; nil means nop.
	Logger *zap.Logger
	// Groups is the group coordinator (a *consumergroup.Coordinator in
	// production). nil means the group APIs (FindCoordinator, JoinGroup,
	// OffsetCommit, ...) are neither served nor advertised in ApiVersions.
	Groups GroupCoordinator
	// Transactions is the transaction coordinator (a *txn.Coordinator in
	// production). nil means the transaction APIs (InitProducerId with a
	// transactional id, AddPartitionsToTxn, EndTxn, ...) are neither
	// served nor advertised, and transactional produce is refused. It
	// needs Groups (FindCoordinator, AddOffsetsToTxn).
	Transactions TransactionCoordinator
	// ShareState is the share coordinator (a *sharestate.Coordinator in
	// production). nil means the share-state APIs between nodes
	// (InitializeShareGroupState, ReadShareGroupState,
	// WriteShareGroupState, DeleteShareGroupState,
	// ReadShareGroupStateSummary) are neither served nor advertised.
	ShareState ShareStateCoordinator
	// Shares is the share-group data plane (a *share.Manager in
	// production). nil means ShareFetch and ShareAcknowledge are neither
	// served nor advertised. It needs Groups.
	Shares ShareGroups
	// Observer, if set, is told of every request, of the bytes and
	// records produced and fetched per topic (metrics). Nil means none.
	Observer Observer
}
