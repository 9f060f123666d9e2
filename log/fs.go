package log

import (
	"errors"
	"io"
	"os"
	"slices"
)

// FS is the filesystem a Log uses: the OS in production, MemFS in tests.
type FS interface {
	MkdirAll(path string) error
	// OpenFile opens or creates a file for reading and writing.
	OpenFile(path string, create bool) (File, error)
	Remove(path string) error
	RemoveAll(path string) error
	Rename(oldPath, newPath string) error
	// ReadDir returns the names in a directory, sorted.
	ReadDir(path string) ([]string, error)
	// SyncDir makes renames and creations in a directory durable.
	SyncDir(path string) error
}

// File is an open file of an FS.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	Size() (int64, error)
	// Sync makes the file's data durable (fdatasync).
	Sync() error
	Close() error
}

// WillNeeder is a File that can start reading a range into memory ahead
// of a read without waiting for it (posix_fadvise WILLNEED). Read uses it,
// when a File implements it, to fetch what a sequential reader will ask
// for next while the current bytes are sent.
type WillNeeder interface {
	// WillNeed starts reading [off, off+n) into the page cache. It is a
	// hint: it returns at once and reports no error.
	WillNeed(off, n int64)
}

var (
	_ FS         = OSFS{}
	_ File       = (*osFile)(nil)
	_ WillNeeder = (*osFile)(nil)
)

// OSFS is the operating system's filesystem. File.Sync is fdatasync where
// the platform has it; SyncDir fsyncs the directory. Its zero value is
// ready to use and safe for concurrent use.
type OSFS struct{}

// MkdirAll creates path and its parents with mode 0755.
func (OSFS) MkdirAll(path string) error { return os.MkdirAll(path, 0o755) }

// OpenFile opens path read-write, creating it (mode 0644) when create is set.
func (OSFS) OpenFile(path string, create bool) (File, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, err
	}
	return &osFile{f: f}, nil
}

// Remove removes a file or empty directory.
func (OSFS) Remove(path string) error { return os.Remove(path) }

// RemoveAll removes path and everything below it.
func (OSFS) RemoveAll(path string) error { return os.RemoveAll(path) }

// Rename renames oldPath to newPath, replacing it.
func (OSFS) Rename(oldPath, newPath string) error { return os.Rename(oldPath, newPath) }

// ReadDir returns the sorted names in the directory path.
func (OSFS) ReadDir(path string) ([]string, error) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	slices.Sort(names)
	return names, nil
}

// SyncDir fsyncs the directory so that entries created, removed or renamed
// in it survive power loss.
func (OSFS) SyncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type osFile struct{ f *os.File }

func (o *osFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.f.ReadAt(p, off)
	if errors.Is(err, io.EOF) && n == len(p) {
		err = nil
	}
	return n, err
}

func (o *osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o *osFile) Truncate(size int64) error                { return o.f.Truncate(size) }
func (o *osFile) Close() error                             { return o.f.Close() }
func (o *osFile) Sync() error                              { return fdatasync(o.f) }

func (o *osFile) Size() (int64, error) {
	fi, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
