//go:build !linux

package test

// dropPageCache does nothing where posix_fadvise is not available: the
// cold replay figure is then a warm one.
func dropPageCache(string) error { return nil }
