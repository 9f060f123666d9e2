package log

// CONTRACT FILE — the agreed public surface of package log. The log helper
// replaces every body here with the real implementation, moving each piece
// into the file named for it (config.go, log.go, flusher.go, fs.go, ...), and
// deletes this file. Signatures and documented semantics must not change
// without agreement: partition is written against them.

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

var (
	// ErrOffsetOutOfRange reports a read below the log start offset or above
	// the log end offset.
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrOffsetMismatch reports an Append whose first batch's base offset is
	// not the log end offset.
	ErrOffsetMismatch = errors.New("log: batch base offset is not the log end offset")
	// ErrClosed reports use of a closed Log or Flusher.
	ErrClosed = errors.New("log: closed")
)

// Config holds one partition log's tunables.
type Config struct {
	// SegmentBytes is the size at which the active segment is rolled.
	// Corresponds to segment.bytes. Default 1 GiB.
	SegmentBytes int64
	// SegmentAge is the age of the active segment's first batch (by the
	// injected clock, measured from when the segment was created) at which
	// the next append rolls a new segment. Corresponds to segment.ms.
	// Default 7 days.
	SegmentAge time.Duration
	// IndexIntervalBytes is how many log bytes may lie between two entries
	// of the sparse offset and time indexes. Corresponds to
	// index.interval.bytes. Default 4096.
	IndexIntervalBytes int
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config { panic("contract") }

// Validate reports a Config whose values cannot work.
func (c Config) Validate() error { panic("contract") }

// Options carries collaborators and test seams.
type Options struct {
	// Logger receives lifecycle events (open, recover, roll); nil means nop.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FS is the filesystem; nil means the operating system's.
	FS FS
	// Flusher makes appends durable in groups. Nil means the Log never
	// fsyncs on its own (Sync and Close still do).
	Flusher *Flusher
	// OnSynced, if set, is called with the new synced offset each time it
	// advances: every offset below it is on stable storage. It is called
	// from the flusher's goroutine and must not block or call back into the
	// Log's Append.
	OnSynced func(syncedOffset int64)
}

// Log is one partition's segmented, append-only log of record batches.
// One goroutine appends (the caller serialises Append and Truncate); any
// number read concurrently without blocking the writer.
type Log struct{}

// Open opens or creates the log in dir, recovering after a crash: the
// newest segment(s) are scanned, a torn or corrupt tail is truncated, and a
// missing or inconsistent index is rebuilt. After a clean Close no scan is
// needed.
func Open(dir string, cfg Config, opts Options) (*Log, error) { panic("contract") }

// Append writes one or more whole, verified batches (concatenated) at the end
// of the log. The first batch's base offset must equal NextOffset and the
// batches must be contiguous (ErrOffsetMismatch otherwise). Append returns
// once the bytes are written to the OS; durability follows when the Flusher
// syncs (OnSynced reports it). It may roll a new segment first, by size or
// age. b is not retained.
func (l *Log) Append(b []byte) error { panic("contract") }

// ReadRequest says what Read returns.
type ReadRequest struct {
	// Offset is the first offset wanted; the batch containing it is the
	// first batch returned.
	Offset int64
	// MaxOffset is exclusive: no batch whose last offset is >= MaxOffset is
	// returned (the high watermark or last stable offset).
	MaxOffset int64
	// MaxBytes bounds the bytes returned; only whole batches are returned.
	MaxBytes int
	// MinOneBatch returns the first batch even when it is larger than
	// MaxBytes (KIP-74), so a consumer can always make progress.
	MinOneBatch bool
}

// Read appends to dst whole batches starting with the one that contains
// r.Offset and returns the extended slice. Offset == NextOffset (or an
// offset with nothing below MaxOffset) returns dst unchanged. An offset
// below StartOffset or above NextOffset is ErrOffsetOutOfRange. Safe for
// concurrent use with Append.
func (l *Log) Read(dst []byte, r ReadRequest) ([]byte, error) { panic("contract") }

// BatchHeaders calls fn for the header of every batch whose last offset is
// >= from, in offset order, until fn returns false or the log ends. It reads
// only headers. Used to rebuild producer state.
func (l *Log) BatchHeaders(from int64, fn func(BatchHeader) bool) error { panic("contract") }

// FindTimestamp returns the bytes of the first batch (in offset order) whose
// MaxTimestamp is >= ts, using the time index, appended to dst; found is
// false when no batch qualifies.
func (l *Log) FindTimestamp(dst []byte, ts int64) (batch []byte, found bool, err error) {
	panic("contract")
}

// MaxTimestamp returns the largest MaxTimestamp of any batch in the log and
// the bytes of the first batch that has it (appended to dst); found is false
// for an empty log.
func (l *Log) MaxTimestamp(dst []byte) (ts int64, batch []byte, found bool, err error) {
	panic("contract")
}

// StartOffset returns the log start offset: the first offset still stored.
func (l *Log) StartOffset() int64 { panic("contract") }

// NextOffset returns the log end offset: the offset the next appended batch
// gets.
func (l *Log) NextOffset() int64 { panic("contract") }

// SyncedOffset returns the offset below which everything is on stable
// storage.
func (l *Log) SyncedOffset() int64 { panic("contract") }

// Sync writes everything appended so far to stable storage now.
func (l *Log) Sync() error { panic("contract") }

// TruncateTo removes every batch at or after offset (which must fall on a
// batch boundary or equal NextOffset); replication uses it. Segments wholly
// above are deleted.
func (l *Log) TruncateTo(offset int64) error { panic("contract") }

// Close syncs, closes every file and marks the log cleanly shut down, so
// the next Open needs no recovery scan.
func (l *Log) Close() error { panic("contract") }

// Delete closes the log and removes its directory.
func (l *Log) Delete() error { panic("contract") }

// FlushConfig says when the Flusher syncs.
type FlushConfig struct {
	// Interval, when zero (the default), syncs as soon as anything is
	// appended: every append is durable before it is acknowledged, and
	// appends arriving while a sync runs share the next one (group commit).
	// A positive Interval syncs dirty logs at most that often, trading the
	// last Interval of writes on power loss for throughput.
	Interval time.Duration
}

// Flusher syncs the logs registered with it, shared by every partition on a
// node so that a burst of appends costs one fdatasync per dirty log per
// round, with the files of one round synced concurrently.
type Flusher struct{}

// NewFlusher starts the flusher's goroutine.
func NewFlusher(cfg FlushConfig, logger *zap.Logger) *Flusher { panic("contract") }

// FlushStats counts a Flusher's work since it started.
type FlushStats struct {
	// Syncs is the number of file syncs (fdatasync calls) done.
	Syncs int64
	// Bytes is the number of appended bytes those syncs made durable.
	Bytes int64
	// Rounds is the number of flush rounds (one round syncs every dirty
	// log concurrently).
	Rounds int64
}

// Stats returns the counters; safe for concurrent use.
func (f *Flusher) Stats() FlushStats { panic("contract") }

// Close stops the flusher after one last round; it waits for the goroutine.
func (f *Flusher) Close(ctx context.Context) error { panic("contract") }

// FS is the filesystem a Log uses: the OS in production, MemFS in tests.
type FS interface {
	MkdirAll(path string) error
	// OpenFile opens or creates a file for reading and writing.
	OpenFile(path string, create bool) (File, error)
	Remove(path string) error
	RemoveAll(path string) error
	Rename(oldPath, newPath string) error
	// ReadDir returns the names in a directory, sorted.
	ReadDir(path string) ([]string, error)
	// SyncDir makes renames and creations in a directory durable.
	SyncDir(path string) error
}

// File is an open file of an FS.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	Size() (int64, error)
	// Sync makes the file's data durable (fdatasync).
	Sync() error
	Close() error
}
