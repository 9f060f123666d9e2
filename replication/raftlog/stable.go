package raftlog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/sluice-io/sluice/log"
)

// StableFile is the name of a group's stable store in its directory.
const StableFile = "raft.stable"

var _ raft.StableStore = (*Stable)(nil)

// errNotFound is what Get answers for a key never set, as raft expects of
// a stable store ("not found" in the message).
var errNotFound = errors.New("not found")

// Stable is a raft.StableStore in one small file: Raft's current term and
// vote. Every Set rewrites the file (temporary file, fsync, rename, fsync
// of the directory); Raft sets them only on elections, so a file per
// partition costs nothing while a bolt database per partition would hold
// a memory map each. Safe for concurrent use.
type Stable struct {
	fs   log.FS
	path string

	mu     sync.Mutex
	values map[string][]byte
}

// OpenStable opens (creating if need be) the stable store in dir.
func OpenStable(dir string, fs log.FS) (*Stable, error) {
	if fs == nil {
		fs = log.OSFS{}
	}
	s := &Stable{fs: fs, path: filepath.Join(dir, StableFile), values: map[string][]byte{}}
	f, err := fs.OpenFile(s.path, true)
	if err != nil {
		return nil, fmt.Errorf("raftlog: open %s: %w", s.path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("raftlog: size of %s: %w", s.path, err)
	}
	if size == 0 {
		return s, nil
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("raftlog: read %s: %w", s.path, err)
	}
	if err := json.Unmarshal(b, &s.values); err != nil {
		// Written whole by rename: a bad file is not a torn write.
		return nil, fmt.Errorf("raftlog: %s is corrupt: %w", s.path, err)
	}
	return s, nil
}

// Set stores val under key, durably.
func (s *Stable) Set(key []byte, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.values[string(key)]
	s.values[string(key)] = append([]byte(nil), val...)
	if err := s.save(); err != nil {
		if had {
			s.values[string(key)] = old
		} else {
			delete(s.values, string(key))
		}
		return err
	}
	return nil
}

// Get returns the value of key, or an error saying "not found".
func (s *Stable) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[string(key)]
	if !ok {
		return nil, errNotFound
	}
	return append([]byte(nil), v...), nil
}

// SetUint64 stores val under key, durably.
func (s *Stable) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value of key, 0 when it was never set.
func (s *Stable) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if errors.Is(err, errNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftlog: %s: value of %q is %d bytes, not a uint64", s.path, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// save writes the values to a temporary file and renames it over the
// store's file.
func (s *Stable) save() error {
	b, err := json.Marshal(s.values)
	if err != nil {
		return fmt.Errorf("raftlog: encode %s: %w", s.path, err)
	}
	tmp := s.path + ".tmp"
	f, err := s.fs.OpenFile(tmp, true)
	if err != nil {
		return fmt.Errorf("raftlog: create %s: %w", tmp, err)
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(b, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fs.Rename(tmp, s.path)
	}
	if err == nil {
		err = s.fs.SyncDir(filepath.Dir(s.path))
	}
	if err != nil {
		return fmt.Errorf("raftlog: write %s: %w", s.path, err)
	}
	return nil
}
