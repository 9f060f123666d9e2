package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
)

// Checkpoint files hold a few offsets, big-endian, followed by a CRC-32C of
// them, and are replaced atomically (write a temporary file, sync, rename,
// sync the directory), so a crash leaves the old or the new content:
//
//	offset  size  field
//	     0     8  value 0
//	     8     8  value 1 (files with two values)
//	   8*n     4  crc  (CRC-32C of bytes 0..8*n)
//
// The files, each with its meaning:
//
//	.recovery-point     1 value: base offset of the segment that was active
//	                    when every older segment had been synced
//	.log-start-offset   1 value: the log start offset set by
//	                    AdvanceStartOffset (DeleteRecords), possibly inside
//	                    a segment
//	.cleaner-checkpoint 2 values: the cleaner's first dirty offset and its
//	                    earliest pending tombstone delete horizon (ms, 0 for
//	                    none); see CleanerCheckpoint
//	.compacted-end      1 value: the end of the highest range ever replaced
//	                    by cleaned segments, written before the swap; only
//	                    segments based below it may have offset gaps, so
//	                    recovery demands dense offsets everywhere else (a
//	                    corrupted base offset, which the CRC does not cover,
//	                    then cannot pass for a compaction gap)
//
// Every segment based below the recovery point was sealed, then synced
// together with its indexes, so recovery after an unclean shutdown trusts
// those segments (index checks and a verified tail), and verifies every
// batch of the segments at or above it. As Kafka's
// recovery-point-offset-checkpoint, it is written rarely: when a sync
// covers a roll, when TruncateTo moves below it, and by Open.
const (
	recoveryPointFile     = ".recovery-point"
	logStartFile          = ".log-start-offset"
	cleanerCheckpointFile = ".cleaner-checkpoint"
	compactedEndFile      = ".compacted-end"
	checkpointTempSuffix  = ".tmp"
)

// isCheckpointFile reports whether name is one of the checkpoint files or
// a leftover temporary of one.
func isCheckpointFile(name string) bool {
	for _, f := range []string{recoveryPointFile, logStartFile, cleanerCheckpointFile, compactedEndFile} {
		if name == f || name == f+checkpointTempSuffix {
			return true
		}
	}
	return false
}

// readCheckpoint returns the n values stored in dir/name; ok is false when
// the file is missing, short or fails its CRC.
func readCheckpoint(fs FS, dir, name string, n int) (values []int64, ok bool) {
	f, err := fs.OpenFile(filepath.Join(dir, name), false)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	b := make([]byte, 8*n+4)
	if got, _ := f.ReadAt(b, 0); got != len(b) {
		return nil, false
	}
	if crc32.Checksum(b[:8*n], crc32c) != binary.BigEndian.Uint32(b[8*n:]) {
		return nil, false
	}
	values = make([]int64, n)
	for i := range values {
		values[i] = int64(binary.BigEndian.Uint64(b[8*i:]))
	}
	return values, true
}

// writeCheckpoint durably replaces dir/name with values.
func writeCheckpoint(fs FS, dir, name string, values ...int64) error {
	b := make([]byte, 0, 8*len(values)+4)
	for _, v := range values {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32c))
	tmp := filepath.Join(dir, name+checkpointTempSuffix)
	f, err := fs.OpenFile(tmp, true)
	if err != nil {
		return err
	}
	_, werr := f.WriteAt(b, 0)
	err = errors.Join(werr, f.Truncate(int64(len(b))), f.Sync(), f.Close())
	if err == nil {
		err = fs.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = fs.SyncDir(dir)
	}
	return err
}

// readRecoveryPoint returns the stored recovery point, or 0 (verify every
// segment) when the file is missing or unreadable.
func readRecoveryPoint(fs FS, dir string) int64 {
	v, ok := readCheckpoint(fs, dir, recoveryPointFile, 1)
	if !ok {
		return 0
	}
	return max(v[0], 0)
}

// writeRecoveryPoint durably replaces the recovery point file.
func writeRecoveryPoint(fs FS, dir string, offset int64) error {
	if err := writeCheckpoint(fs, dir, recoveryPointFile, offset); err != nil {
		return fmt.Errorf("write recovery point %d: %w", offset, err)
	}
	return nil
}

// readCompactedEnd returns the stored compacted end, 0 when none: no
// segment has ever been replaced by a cleaned one.
func readCompactedEnd(fs FS, dir string) int64 {
	v, ok := readCheckpoint(fs, dir, compactedEndFile, 1)
	if !ok {
		return 0
	}
	return v[0]
}
