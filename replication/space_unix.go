//go:build unix

package replication

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// osStatfs is the operating system's Statfs.
func osStatfs(path string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
