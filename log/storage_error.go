package log

import (
	"errors"
	iofs "io/fs"
	"os"
	"syscall"
)

// isTooManyOpenFiles reports whether err is the process's (EMFILE) or
// the system's (ENFILE) limit on open files.
func isTooManyOpenFiles(err error) bool {
	return err != nil && (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE))
}

// IsStorageError reports whether err is the failure of a filesystem
// operation (open, read, write, truncate, fsync, rename of a partition's
// files): a *fs.PathError, *os.LinkError, *os.SyscallError or an errno,
// wrapped at any depth. Such an error is the disk's, not the caller's:
// Kafka answers it with KAFKA_STORAGE_ERROR. Use of a file that was
// closed under the caller (fs.ErrClosed, a race with closing the
// partition) is not a storage error.
func IsStorageError(err error) bool {
	if err == nil || errors.Is(err, iofs.ErrClosed) {
		return false
	}
	var (
		pathErr *iofs.PathError
		linkErr *os.LinkError
		sysErr  *os.SyscallError
		errno   syscall.Errno
	)
	return errors.As(err, &pathErr) || errors.As(err, &linkErr) || errors.As(err, &sysErr) || errors.As(err, &errno)
}
