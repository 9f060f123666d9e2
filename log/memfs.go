package log

import (
	"bytes"
	"fmt"
	"io"
	iofs "io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

var (
	_ FS   = (*MemFS)(nil)
	_ File = (*memHandle)(nil)
)

// MemFS is an in-memory FS for tests, with power-cut simulation. It tracks,
// per file, the bytes last made durable by File.Sync and, per directory, the
// entries last made durable by SyncDir; CrashClone and CrashCloneWith
// return what a machine would find after losing power. Directories
// themselves are durable as soon as MkdirAll creates them. A process crash
// (kill -9) needs no simulation: reopen on the same MemFS without closing.
//
// Like POSIX, a removed or renamed-over file stays readable and writable
// through handles already open. Safe for concurrent use.
type MemFS struct {
	mu sync.Mutex
	// dirs maps a cleaned directory path to its entries.
	dirs map[string]*memDir
}

type memDir struct {
	entries map[string]*memInode // what a listing shows now
	durable map[string]*memInode // what survives a power cut
}

type memInode struct {
	mu     sync.RWMutex
	data   []byte
	synced []byte // copy of data at the last Sync
}

// NewMemFS returns an empty in-memory filesystem whose root "/" (and ".")
// exist.
func NewMemFS() *MemFS {
	m := &MemFS{dirs: map[string]*memDir{}}
	m.dirs["/"] = newMemDir()
	m.dirs["."] = newMemDir()
	return m
}

func newMemDir() *memDir {
	return &memDir{entries: map[string]*memInode{}, durable: map[string]*memInode{}}
}

func memPathError(op, path string, err error) error {
	return &iofs.PathError{Op: op, Path: path, Err: err}
}

// MkdirAll creates path and its parents; they are durable at once.
func (m *MemFS) MkdirAll(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = filepath.Clean(path)
	for p := path; ; p = filepath.Dir(p) {
		if _, ok := m.dirs[p]; !ok {
			if parent, ok := m.dirs[filepath.Dir(p)]; ok && p != filepath.Dir(p) {
				if _, isFile := parent.entries[filepath.Base(p)]; isFile {
					return memPathError("mkdir", p, iofs.ErrExist)
				}
			}
			m.dirs[p] = newMemDir()
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// OpenFile opens or creates path for reading and writing. Its parent
// directory must exist.
func (m *MemFS) OpenFile(path string, create bool) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = filepath.Clean(path)
	dir, ok := m.dirs[filepath.Dir(path)]
	if !ok {
		return nil, memPathError("open", path, iofs.ErrNotExist)
	}
	if _, isDir := m.dirs[path]; isDir {
		return nil, memPathError("open", path, fmt.Errorf("is a directory"))
	}
	name := filepath.Base(path)
	ino, ok := dir.entries[name]
	if !ok {
		if !create {
			return nil, memPathError("open", path, iofs.ErrNotExist)
		}
		ino = &memInode{}
		dir.entries[name] = ino
	}
	return &memHandle{ino: ino, path: path}, nil
}

// Remove removes a file or an empty directory; the removal is durable after
// SyncDir of the parent.
func (m *MemFS) Remove(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = filepath.Clean(path)
	if d, isDir := m.dirs[path]; isDir {
		if len(d.entries) > 0 || m.hasSubdirs(path) {
			return memPathError("remove", path, fmt.Errorf("directory not empty"))
		}
		delete(m.dirs, path)
		return nil
	}
	dir, ok := m.dirs[filepath.Dir(path)]
	if !ok {
		return memPathError("remove", path, iofs.ErrNotExist)
	}
	if _, ok := dir.entries[filepath.Base(path)]; !ok {
		return memPathError("remove", path, iofs.ErrNotExist)
	}
	delete(dir.entries, filepath.Base(path))
	return nil
}

func (m *MemFS) hasSubdirs(path string) bool {
	prefix := path + string(filepath.Separator)
	for p := range m.dirs {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// RemoveAll removes path and everything below it; a missing path is not an
// error. Directories go at once; a file's removal is durable after SyncDir.
func (m *MemFS) RemoveAll(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = filepath.Clean(path)
	if _, isDir := m.dirs[path]; isDir {
		prefix := path + string(filepath.Separator)
		for p := range m.dirs {
			if p == path || strings.HasPrefix(p, prefix) {
				delete(m.dirs, p)
			}
		}
		if parent, ok := m.dirs[filepath.Dir(path)]; ok {
			delete(parent.entries, filepath.Base(path))
		}
		return nil
	}
	if dir, ok := m.dirs[filepath.Dir(path)]; ok {
		delete(dir.entries, filepath.Base(path))
	}
	return nil
}

// Rename moves oldPath to newPath, replacing any file there; durable after
// SyncDir of both parents.
func (m *MemFS) Rename(oldPath, newPath string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	oldPath, newPath = filepath.Clean(oldPath), filepath.Clean(newPath)
	from, ok := m.dirs[filepath.Dir(oldPath)]
	if !ok {
		return memPathError("rename", oldPath, iofs.ErrNotExist)
	}
	ino, ok := from.entries[filepath.Base(oldPath)]
	if !ok {
		return memPathError("rename", oldPath, iofs.ErrNotExist)
	}
	to, ok := m.dirs[filepath.Dir(newPath)]
	if !ok {
		return memPathError("rename", newPath, iofs.ErrNotExist)
	}
	delete(from.entries, filepath.Base(oldPath))
	to.entries[filepath.Base(newPath)] = ino
	return nil
}

// ReadDir returns the sorted names of the files and directories in path.
func (m *MemFS) ReadDir(path string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	path = filepath.Clean(path)
	dir, ok := m.dirs[path]
	if !ok {
		return nil, memPathError("readdir", path, iofs.ErrNotExist)
	}
	names := make([]string, 0, len(dir.entries))
	for name := range dir.entries {
		names = append(names, name)
	}
	for p := range m.dirs {
		if p != path && filepath.Dir(p) == path {
			names = append(names, filepath.Base(p))
		}
	}
	slices.Sort(names)
	return names, nil
}

// SyncDir makes the current entries of directory path durable.
func (m *MemFS) SyncDir(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, ok := m.dirs[filepath.Clean(path)]
	if !ok {
		return memPathError("syncdir", path, iofs.ErrNotExist)
	}
	dir.durable = make(map[string]*memInode, len(dir.entries))
	for name, ino := range dir.entries {
		dir.durable[name] = ino
	}
	return nil
}

// CrashClone returns a new MemFS holding only what was durable: the
// directory entries as of each directory's last SyncDir, each file with the
// data of its last Sync. It simulates a power cut; m is unchanged.
func (m *MemFS) CrashClone() *MemFS { return m.CrashCloneWith(nil) }

// CrashCloneWith is CrashClone for a power cut that tore writes: for each
// durable file whose current data extends its synced data (appends since the
// last Sync), keep(path, n) chooses how many of those n unsynced bytes
// survive (clamped to [0, n]). A file rewritten below its synced length
// since the last Sync keeps only its synced data. Nil keep keeps none.
func (m *MemFS) CrashCloneWith(keep func(path string, unsynced int) int) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &MemFS{dirs: make(map[string]*memDir, len(m.dirs))}
	clones := map[*memInode]*memInode{} // hard links stay shared
	for p, dir := range m.dirs {
		nd := newMemDir()
		for name, ino := range dir.durable {
			cl, ok := clones[ino]
			if !ok {
				ino.mu.RLock()
				data := slices.Clone(ino.synced)
				if extra := len(ino.data) - len(ino.synced); keep != nil && extra > 0 && bytes.HasPrefix(ino.data, ino.synced) {
					k := min(max(keep(filepath.Join(p, name), extra), 0), extra)
					data = append(data, ino.data[len(ino.synced):len(ino.synced)+k]...)
				}
				ino.mu.RUnlock()
				cl = &memInode{data: data, synced: slices.Clone(data)}
				clones[ino] = cl
			}
			nd.entries[name] = cl
			nd.durable[name] = cl
		}
		c.dirs[p] = nd
	}
	return c
}

// memHandle is an open MemFS file.
type memHandle struct {
	ino    *memInode
	path   string
	mu     sync.Mutex
	closed bool
}

func (h *memHandle) check(op string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return memPathError(op, h.path, iofs.ErrClosed)
	}
	return nil
}

func (h *memHandle) ReadAt(p []byte, off int64) (int, error) {
	if err := h.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, memPathError("read", h.path, iofs.ErrInvalid)
	}
	h.ino.mu.RLock()
	defer h.ino.mu.RUnlock()
	if off >= int64(len(h.ino.data)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, h.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *memHandle) WriteAt(p []byte, off int64) (int, error) {
	if err := h.check("write"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, memPathError("write", h.path, iofs.ErrInvalid)
	}
	h.ino.mu.Lock()
	defer h.ino.mu.Unlock()
	end := off + int64(len(p))
	if end > int64(len(h.ino.data)) {
		h.ino.data = slices.Grow(h.ino.data, int(end)-len(h.ino.data))[:end]
	}
	copy(h.ino.data[off:], p)
	return len(p), nil
}

func (h *memHandle) Truncate(size int64) error {
	if err := h.check("truncate"); err != nil {
		return err
	}
	if size < 0 {
		return memPathError("truncate", h.path, iofs.ErrInvalid)
	}
	h.ino.mu.Lock()
	defer h.ino.mu.Unlock()
	if size <= int64(len(h.ino.data)) {
		// Copy so that bytes written later past size never alias a slice
		// handed out before.
		h.ino.data = slices.Clone(h.ino.data[:size])
	} else {
		h.ino.data = append(h.ino.data, make([]byte, int(size)-len(h.ino.data))...)
	}
	return nil
}

func (h *memHandle) Size() (int64, error) {
	if err := h.check("stat"); err != nil {
		return 0, err
	}
	h.ino.mu.RLock()
	defer h.ino.mu.RUnlock()
	return int64(len(h.ino.data)), nil
}

func (h *memHandle) Sync() error {
	if err := h.check("sync"); err != nil {
		return err
	}
	h.ino.mu.Lock()
	defer h.ino.mu.Unlock()
	h.ino.synced = slices.Clone(h.ino.data)
	return nil
}

func (h *memHandle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return memPathError("close", h.path, iofs.ErrClosed)
	}
	h.closed = true
	return nil
}
