//go:build !unix

package replication

import "errors"

// errNoStatfs reports a platform without statfs: there every check fails,
// so appends are never refused for space.
var errNoStatfs = errors.New("replication: free space cannot be read on this platform")

// osStatfs reports that free space cannot be read here.
func osStatfs(string) (free, total uint64, err error) { return 0, 0, errNoStatfs }
