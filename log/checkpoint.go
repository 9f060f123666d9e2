package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
)

// Recovery point file (.recovery-point), big-endian, replaced atomically
// (write a temporary file, sync, rename, sync the directory):
//
//	offset  size  field
//	     0     8  recoveryPoint  (base offset of the segment that was active
//	                              when every older segment had been synced)
//	     8     4  crc            (CRC-32C of bytes 0..8)
//
// Every segment based below the recovery point was sealed, then synced
// together with its indexes, so recovery after an unclean shutdown trusts
// those segments (index checks and a verified tail), and verifies every
// batch of the segments at or above it. As Kafka's
// recovery-point-offset-checkpoint, it is written rarely: when a sync
// covers a roll, when TruncateTo moves below it, and by Open.
const (
	recoveryPointFile = ".recovery-point"
	recoveryPointSize = 12
)

// readRecoveryPoint returns the stored recovery point, or 0 (verify every
// segment) when the file is missing or unreadable.
func readRecoveryPoint(fs FS, dir string) int64 {
	f, err := fs.OpenFile(filepath.Join(dir, recoveryPointFile), false)
	if err != nil {
		return 0
	}
	defer f.Close()
	var b [recoveryPointSize]byte
	if n, _ := f.ReadAt(b[:], 0); n != len(b) {
		return 0
	}
	if crc32.Checksum(b[:8], crc32c) != binary.BigEndian.Uint32(b[8:]) {
		return 0
	}
	return max(int64(binary.BigEndian.Uint64(b[:8])), 0)
}

// writeRecoveryPoint durably replaces the recovery point file.
func writeRecoveryPoint(fs FS, dir string, offset int64) error {
	var b [recoveryPointSize]byte
	binary.BigEndian.PutUint64(b[:8], uint64(offset))
	binary.BigEndian.PutUint32(b[8:], crc32.Checksum(b[:8], crc32c))
	tmp := filepath.Join(dir, recoveryPointFile+".tmp")
	f, err := fs.OpenFile(tmp, true)
	if err != nil {
		return fmt.Errorf("write recovery point %d: %w", offset, err)
	}
	_, werr := f.WriteAt(b[:], 0)
	err = errors.Join(werr, f.Truncate(recoveryPointSize), f.Sync(), f.Close())
	if err == nil {
		err = fs.Rename(tmp, filepath.Join(dir, recoveryPointFile))
	}
	if err == nil {
		err = fs.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write recovery point %d: %w", offset, err)
	}
	return nil
}
