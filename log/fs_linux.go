//go:build linux

package log

import (
	"os"

	"golang.org/x/sys/unix"
)

// WillNeed starts reading [off, off+n) into the page cache.
func (o *osFile) WillNeed(off, n int64) {
	rc, err := o.f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.Fadvise(int(fd), off, n, unix.FADV_WILLNEED) // a hint
	})
}

// fdatasync flushes f's data and the metadata needed to read it back (its
// size) but not, say, its modification time.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var syncErr error
	if err := rc.Control(func(fd uintptr) {
		for {
			syncErr = unix.Fdatasync(int(fd))
			if syncErr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if syncErr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: syncErr}
	}
	return nil
}
