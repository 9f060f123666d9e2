//go:build linux

package test

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdatasync makes f's data durable without its metadata, as the server's
// flusher does.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
