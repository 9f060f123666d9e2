//go:build !unix

package test

import "testing"

// freeBytes skips the test: free space is read with statfs, which this
// platform lacks (and so does the broker's free-space check).
func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	t.Skip("statfs is unix-only")
	return 0
}
