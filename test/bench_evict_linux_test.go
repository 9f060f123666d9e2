//go:build linux

package test

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropPageCache asks the kernel to drop path's cached pages (they are clean:
// the server synced them), so the next read comes from the disk.
func dropPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
