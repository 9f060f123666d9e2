//go:build !linux

package log

import "os"

// WillNeed does nothing where posix_fadvise is not available.
func (o *osFile) WillNeed(off, n int64) {}

// fdatasync falls back to fsync where the platform has no fdatasync.
func fdatasync(f *os.File) error { return f.Sync() }
