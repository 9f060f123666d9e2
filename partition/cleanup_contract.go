package partition

// CONTRACT FILE — retention, DeleteRecords, compaction and live config for
// issue 4. The storage helper replaces these bodies with real code in files
// named for what they hold (retention.go, delete_records.go, compact.go,
// ...) and deletes this file. replication (the schedules and config
// changes) is written against these signatures.

import (
	"context"
	"time"
)

// SetConfig applies a changed topic config to the live replica: later
// appends, rolls, retention and compaction use it. It fails, changing
// nothing, when cfg does not Validate.
func (r *Replica) SetConfig(cfg Config) error { panic("contract") }

// Config returns the replica's current config.
func (r *Replica) Config() Config { panic("contract") }

// RetentionResult says what EnforceRetention removed.
type RetentionResult struct {
	SegmentsDeleted int
	BytesDeleted    int64
	// LogStartOffset is the log start offset afterwards.
	LogStartOffset int64
}

// EnforceRetention deletes whole segments that retention no longer keeps,
// oldest first, when the cleanup policy includes delete: segments whose
// newest timestamp is older than now minus RetentionTime, and oldest
// segments while the partition is above RetentionBytes. It never deletes
// the active segment nor data at or above the high watermark. The log start
// offset moves to the first kept offset. Removed segments are logged.
func (r *Replica) EnforceRetention(now time.Time) (RetentionResult, error) {
	panic("contract")
}

// DeleteRecordsBefore moves the log start offset up to offset (DeleteRecords;
// -1 means the high watermark), durably, and deletes segments wholly below
// it. An offset above the high watermark is kerr.OffsetOutOfRange; below
// the current log start it changes nothing. Returns the new log start
// offset.
func (r *Replica) DeleteRecordsBefore(offset int64) (int64, error) { panic("contract") }

// CleanLimits bounds one compaction's resources.
type CleanLimits struct {
	// MaxMapBytes bounds the memory of the key -> offset map; a log with
	// more distinct keys is cleaned in several passes. Corresponds to
	// log.cleaner.dedupe.buffer.size. Default 128 MiB.
	MaxMapBytes int64
	// MaxBytesPerSecond throttles the cleaner's reads and writes; zero is
	// unthrottled. Corresponds to log.cleaner.io.max.bytes.per.second.
	MaxBytesPerSecond int64
}

// CleanResult says what a compaction did.
type CleanResult struct {
	// Cleaned is false when nothing was due (policy, dirty ratio, lags).
	Cleaned                    bool
	BytesBefore, BytesAfter    int64
	RecordsRemoved             int64
	TombstonesRemoved          int64
	FirstDirtyOffsetAfterClean int64
}

// Compact cleans the log when the cleanup policy includes compact and it is
// due (dirty ratio at least MinCleanableDirtyRatio, or a record older than
// MaxCompactionLag): in the non-active segments, only the newest record per
// key is kept (records younger than MinCompactionLag stay), tombstones
// older than DeleteRetention are removed, offsets are preserved (gaps are
// fine) and batches keep their producer metadata. Appends and reads go on
// meanwhile. A crash at any point leaves a valid log. ctx cancels it.
func (r *Replica) Compact(ctx context.Context, now time.Time, limits CleanLimits) (CleanResult, error) {
	panic("contract")
}
