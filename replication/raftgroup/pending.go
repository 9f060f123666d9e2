package raftgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/raft"
)

// PendingRestoreFile is the file, in the partition directory, that names
// the installed snapshot whose restore has not completed. It exists from
// before the snapshot becomes visible in the snapshot store until its
// restore ends; Open finds it after a crash and drops that snapshot.
const PendingRestoreFile = "raft-restore.pending"

// snapshotsSubdir is where raft's FileSnapshotStore keeps its snapshots
// inside the directory it is given.
const snapshotsSubdir = "snapshots"

// snapshotStore is raft's file snapshot store with one addition: a
// snapshot a leader installs is announced in the pending-restore file
// before it becomes visible, so that a crash before its restore completes
// never leaves a snapshot that claims data the segments lack. Snapshots
// this node takes itself (Persist marks their sink) are not announced.
type snapshotStore struct {
	raft.SnapshotStore
	// partitionDir holds the pending-restore file; snapshotDir the store.
	partitionDir, snapshotDir string

	// mu guards installed: the snapshot whose restore is pending, set when
	// its sink closes, read by the restore.
	mu        sync.Mutex
	installed installedSnapshot
}

// installedSnapshot names a snapshot a leader installed.
type installedSnapshot struct {
	id    string
	index uint64
}

var _ raft.SnapshotStore = (*snapshotStore)(nil)

// Create returns a sink that announces the snapshot on Close unless
// Persist marks it as this node's own.
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration, configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &pendingSink{SnapshotSink: sink, store: s, index: index}, nil
}

// pending returns the installed snapshot whose restore is pending.
func (s *snapshotStore) pending() installedSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.installed
}

// finish ends the pending restore of snap: on success the marker goes and
// the snapshot stays; on failure the snapshot goes first, then the marker,
// so raft never finds a snapshot it did not restore.
func (s *snapshotStore) finish(snap installedSnapshot, restored bool) error {
	s.mu.Lock()
	if s.installed == snap {
		s.installed = installedSnapshot{}
	}
	s.mu.Unlock()
	if !restored {
		if err := s.drop(snap.id); err != nil {
			return err
		}
	}
	return removePending(s.partitionDir)
}

// drop removes the snapshot id from the store, durably.
func (s *snapshotStore) drop(id string) error {
	if id == "" || filepath.Base(id) != id || id == "." || id == ".." {
		return fmt.Errorf("raftgroup: %s names snapshot %q, not a snapshot id", PendingRestoreFile, id)
	}
	dir := filepath.Join(s.snapshotDir, snapshotsSubdir)
	if err := os.RemoveAll(filepath.Join(dir, id)); err != nil {
		return fmt.Errorf("raftgroup: remove snapshot %s that was not restored: %w", id, err)
	}
	return syncDir(dir)
}

// pendingSink is a snapshot sink of snapshotStore.
type pendingSink struct {
	raft.SnapshotSink
	store *snapshotStore
	index uint64
	// local is set by Persist: a snapshot this node takes of its own
	// state, which needs no restore.
	local bool
}

// Close announces an installed snapshot in the pending-restore file, then
// makes it visible.
func (p *pendingSink) Close() error {
	if p.local {
		return p.SnapshotSink.Close()
	}
	if err := writePending(p.store.partitionDir, p.ID()); err != nil {
		_ = p.SnapshotSink.Cancel()
		return err
	}
	p.store.mu.Lock()
	p.store.installed = installedSnapshot{id: p.ID(), index: p.index}
	p.store.mu.Unlock()
	return p.SnapshotSink.Close()
}

// recoverPending drops the snapshot a crash left un-restored, if any: raft
// then does not know it, and the leader sends a snapshot again. Returns
// the id dropped, "" for none.
func (s *snapshotStore) recoverPending() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.partitionDir, PendingRestoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("raftgroup: read %s: %w", PendingRestoreFile, err)
	}
	id := string(b)
	if err := s.drop(id); err != nil {
		return "", err
	}
	return id, removePending(s.partitionDir)
}

// writePending durably records id as the snapshot whose restore is
// pending (write a temporary file, sync, rename, sync the directory).
func writePending(dir, id string) error {
	path := filepath.Join(dir, PendingRestoreFile)
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("raftgroup: create %s: %w", tmp, err)
	}
	_, err = f.WriteString(id)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("raftgroup: write %s: %w", path, err)
	}
	return syncDir(dir)
}

// removePending durably removes the pending-restore file, if any.
func removePending(dir string) error {
	err := os.Remove(filepath.Join(dir, PendingRestoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("raftgroup: remove %s: %w", PendingRestoreFile, err)
	}
	return syncDir(dir)
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("raftgroup: open directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("raftgroup: sync directory %s: %w", dir, err)
	}
	return nil
}
