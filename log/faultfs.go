package log

import (
	iofs "io/fs"
	"strings"
	"sync"
	"sync/atomic"
)

// FaultOp names the kinds of file operation a Fault fails; combine them
// with |.
type FaultOp uint8

const (
	// FaultRead fails File.ReadAt.
	FaultRead FaultOp = 1 << iota
	// FaultWrite fails File.WriteAt and File.Truncate.
	FaultWrite
	// FaultSync fails File.Sync and FS.SyncDir.
	FaultSync
	// FaultOpen fails FS.OpenFile, MkdirAll, Rename, Remove and RemoveAll.
	FaultOpen
)

// Fault is a failure FaultFS injects: every operation of a kind in Ops
// on a path containing PathContains ("" matches every path) fails with a
// *fs.PathError carrying Err, as a failing disk answers (syscall.EIO,
// syscall.ENOSPC).
type Fault struct {
	Ops          FaultOp
	PathContains string
	Err          error
}

// FaultFS is an FS that passes every call to another FS except those a
// Fault it holds matches, which fail without reaching it: a disk that
// breaks on demand, for tests and for `sluice serve`'s
// debug.fault.injection setting. Faults stay until Clear. A nil FS
// means the OS. Safe for concurrent use.
type FaultFS struct {
	fs FS
	// count is len(faults), read without mu so that a FaultFS holding no
	// fault costs one atomic load per call.
	count  atomic.Int32
	mu     sync.RWMutex
	faults []Fault
}

var (
	_ FS   = (*FaultFS)(nil)
	_ File = (*faultFile)(nil)
)

// NewFaultFS returns a FaultFS over fs (nil means OSFS) holding no fault.
func NewFaultFS(fs FS) *FaultFS {
	if fs == nil {
		fs = OSFS{}
	}
	return &FaultFS{fs: fs}
}

// Inject adds a fault; it applies to files already open too.
func (f *FaultFS) Inject(ft Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, ft)
	f.count.Store(int32(len(f.faults)))
}

// Clear removes every fault.
func (f *FaultFS) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
	f.count.Store(0)
}

// Faults returns a copy of the faults held.
func (f *FaultFS) Faults() []Fault {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return append([]Fault(nil), f.faults...)
}

// fail returns the error an operation of kind op on path gets, or nil.
func (f *FaultFS) fail(kind FaultOp, op, path string) error {
	if f.count.Load() == 0 {
		return nil
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, ft := range f.faults {
		if ft.Ops&kind != 0 && strings.Contains(path, ft.PathContains) {
			return &iofs.PathError{Op: op, Path: path, Err: ft.Err}
		}
	}
	return nil
}

// MkdirAll creates path and its parents unless a FaultOpen fault matches.
func (f *FaultFS) MkdirAll(path string) error {
	if err := f.fail(FaultOpen, "mkdir", path); err != nil {
		return err
	}
	return f.fs.MkdirAll(path)
}

// OpenFile opens path unless a FaultOpen fault matches; the File it
// returns fails reads, writes and syncs as faults say.
func (f *FaultFS) OpenFile(path string, create bool) (File, error) {
	if err := f.fail(FaultOpen, "open", path); err != nil {
		return nil, err
	}
	file, err := f.fs.OpenFile(path, create)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: path}, nil
}

// Remove removes path unless a FaultOpen fault matches.
func (f *FaultFS) Remove(path string) error {
	if err := f.fail(FaultOpen, "remove", path); err != nil {
		return err
	}
	return f.fs.Remove(path)
}

// RemoveAll removes path and everything below it unless a FaultOpen
// fault matches.
func (f *FaultFS) RemoveAll(path string) error {
	if err := f.fail(FaultOpen, "remove", path); err != nil {
		return err
	}
	return f.fs.RemoveAll(path)
}

// Rename renames oldPath to newPath unless a FaultOpen fault matches
// either.
func (f *FaultFS) Rename(oldPath, newPath string) error {
	if err := f.fail(FaultOpen, "rename", oldPath); err != nil {
		return err
	}
	if err := f.fail(FaultOpen, "rename", newPath); err != nil {
		return err
	}
	return f.fs.Rename(oldPath, newPath)
}

// ReadDir lists path unless a FaultRead fault matches.
func (f *FaultFS) ReadDir(path string) ([]string, error) {
	if err := f.fail(FaultRead, "readdir", path); err != nil {
		return nil, err
	}
	return f.fs.ReadDir(path)
}

// SyncDir syncs the directory path unless a FaultSync fault matches.
func (f *FaultFS) SyncDir(path string) error {
	if err := f.fail(FaultSync, "fsync", path); err != nil {
		return err
	}
	return f.fs.SyncDir(path)
}

// faultFile is a File of a FaultFS.
type faultFile struct {
	File
	fs   *FaultFS
	path string
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.fail(FaultRead, "read", f.path); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.fail(FaultWrite, "write", f.path); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.fail(FaultWrite, "truncate", f.path); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *faultFile) Sync() error {
	if err := f.fs.fail(FaultSync, "fdatasync", f.path); err != nil {
		return err
	}
	return f.File.Sync()
}

// WillNeed passes the hint on when the wrapped File takes it.
func (f *faultFile) WillNeed(off, n int64) {
	if w, ok := f.File.(WillNeeder); ok {
		w.WillNeed(off, n)
	}
}
