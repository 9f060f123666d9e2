package partition

// CONTRACT FILE — the agreed public surface of package partition. The
// partition helper replaces every body with the real implementation, moving
// each piece into the file named for it (replica.go, append.go, read.go,
// producer.go, waiter.go, timestamp.go, ...), and deletes this file.
// Signatures and documented semantics must not change without agreement:
// wire and replication are written against them.

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// TimestampType says which timestamp a partition stores.
type TimestampType int8

// Timestamp types, as message.timestamp.type names them.
const (
	// CreateTime keeps the producer's timestamps (the default).
	CreateTime TimestampType = iota
	// LogAppendTime overwrites each batch's max timestamp with the broker's
	// clock at append.
	LogAppendTime
)

// Config holds one partition's tunables.
type Config struct {
	// Log configures the underlying segmented log.
	Log log.Config
	// MaxMessageBytes bounds one record batch, header included.
	// Corresponds to max.message.bytes. Default 1048588.
	MaxMessageBytes int
	// TimestampType corresponds to message.timestamp.type. Default
	// CreateTime.
	TimestampType TimestampType
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config { panic("contract") }

// Validate reports a Config whose values cannot work.
func (c Config) Validate() error { panic("contract") }

// Options carries collaborators and test seams.
type Options struct {
	// Logger; nil means nop. The replica binds topic and partition fields.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FS is the filesystem; nil means the OS.
	FS log.FS
	// Flusher syncs the log in groups; nil means appends are never synced
	// by a background flusher (tests).
	Flusher *log.Flusher
	// Durable, when true, advances the high watermark only over synced
	// offsets, so nothing is visible to consumers or acknowledged before it
	// is on stable storage. When false the high watermark follows the log
	// end offset (flush interval mode, or tests without a Flusher).
	Durable bool
}

// Replica is one partition replica: its log, high watermark, log start
// offset, leader epoch, idempotent producer state and fetch waiters. Safe for
// concurrent use: appends are serialised inside, reads never block appends.
type Replica struct{}

// Open opens or creates the replica stored in dir. Producer state is
// restored from a snapshot written by Close and from the batches after it
// (all batches when no snapshot exists).
func Open(dir, topic string, partition int32, cfg Config, opts Options) (*Replica, error) {
	panic("contract")
}

// AppendResult says where an append landed.
type AppendResult struct {
	// BaseOffset and LastOffset are the offsets of the first record of the
	// first batch and the last record of the last batch. For a duplicate of
	// a retried idempotent batch they are the original's.
	BaseOffset, LastOffset int64
	// LogAppendTime is the broker timestamp applied, or -1 under
	// CreateTime.
	LogAppendTime int64
	// LogStartOffset is the log start offset after the append.
	LogStartOffset int64
	// Duplicate reports that the batch was a retry already in the log and
	// nothing was written.
	Duplicate bool
}

// Append validates the produced record batches in b (one or more,
// concatenated), checks and advances idempotent producer state, assigns
// offsets and the leader epoch, and writes them. b is modified in place
// (header fields) and not retained.
//
// Errors are *kerr.Error values a client understands: CorruptMessage (bad
// length, magic, CRC, record count), MessageTooLarge (batch above
// MaxMessageBytes), InvalidRecord, OutOfOrderSequenceNumber,
// InvalidProducerEpoch, UnknownProducerID; any other error is a storage
// failure. A rejected request leaves the log untouched. Append does not
// wait for durability: see WaitCommitted.
func (r *Replica) Append(b []byte) (AppendResult, error) { panic("contract") }

// WaitCommitted blocks until the high watermark is above lastOffset (the
// append is durable and visible), ctx is done (its error) or the replica is
// closed.
func (r *Replica) WaitCommitted(ctx context.Context, lastOffset int64) error { panic("contract") }

// Isolation is a fetch's isolation level.
type Isolation int8

// Isolation levels, as Kafka numbers them.
const (
	ReadUncommitted Isolation = 0
	ReadCommitted   Isolation = 1
)

// ReadRequest says what Read returns.
type ReadRequest struct {
	Offset      int64
	MaxBytes    int
	MinOneBatch bool // return the first batch even above MaxBytes (KIP-74)
	Isolation   Isolation
}

// ReadResult is what Read returns: the batches (dst extended) and the
// partition's offsets at the time of the read.
type ReadResult struct {
	Records          []byte
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
}

// Read appends whole batches from req.Offset up to the high watermark (or
// last stable offset for ReadCommitted) to dst. An offset below the log
// start or above the high watermark is kerr.OffsetOutOfRange.
func (r *Replica) Read(dst []byte, req ReadRequest) (ReadResult, error) { panic("contract") }

// Offsets is a consistent view of a replica's offsets.
type Offsets struct {
	LogStart, HighWatermark, LastStable, LogEnd int64
}

// Offsets returns the replica's current offsets.
func (r *Replica) Offsets() Offsets { panic("contract") }

// OffsetForTimestamp returns the offset and timestamp of the first record
// (by offset) whose timestamp is >= ts, among records below the high
// watermark; found is false when there is none (ListOffsets then answers
// offset -1). It decompresses the one batch it lands in.
func (r *Replica) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	panic("contract")
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp below the high watermark (ListOffsets -3, KIP-734);
// found is false for an empty partition.
func (r *Replica) MaxTimestamp() (offset, timestamp int64, found bool, err error) {
	panic("contract")
}

// LeaderEpoch returns the epoch written into appended batches.
func (r *Replica) LeaderEpoch() int32 { panic("contract") }

// SetLeaderEpoch sets the epoch for later appends (replication calls it on
// leadership change). Default 0.
func (r *Replica) SetLeaderEpoch(epoch int32) { panic("contract") }

// Waiter receives a signal on C whenever the high watermark of any replica
// it watches advances, or a watched replica closes. C has a buffer of one, so
// signals coalesce and never block the replica.
type Waiter struct {
	C chan struct{}
}

// NewWaiter returns a Waiter watching nothing.
func NewWaiter() *Waiter { return &Waiter{C: make(chan struct{}, 1)} }

// Watch registers w for high watermark advances of r until Unwatch.
func (r *Replica) Watch(w *Waiter) { panic("contract") }

// Unwatch removes w.
func (r *Replica) Unwatch(w *Waiter) { panic("contract") }

// Close writes the producer state snapshot and closes the log. Waiters are
// signalled; later calls fail.
func (r *Replica) Close() error { panic("contract") }

// Delete closes the replica and removes its directory.
func (r *Replica) Delete() error { panic("contract") }
