//go:build !unix

package replication

// osStatfs reports that free space cannot be read here.
func osStatfs(string) (free, total uint64, err error) { return 0, 0, errNoStatfs }
