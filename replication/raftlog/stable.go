package raftlog

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
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
// vote. The file holds two slots; every Set writes the values into the
// slot that does not hold the last durable ones and syncs the file's data
// (one fdatasync, no rename, no directory sync), so a write torn by a crash
// leaves the other slot to read. Setting a value a key already has writes
// nothing. Raft sets them only on elections, but an election burst over
// 1,000 partitions sets them thousands of times a second, and each file
// replaced by rename (the format before) cost a journal commit for the
// directory: elections then outlasted their timeouts and never settled
// (replication/doc.go). Safe for concurrent use.
//
//	file:  slot 0 (stableSlotSize bytes) | slot 1 (stableSlotSize bytes)
//	slot:  0      4        12       16       20
//	       +------+--------+--------+--------+------------------+
//	       | SLS2 | seq    | length | crc32c | values (JSON)    |
//	       +------+--------+--------+--------+------------------+
//	       big-endian; crc32c (Castagnoli) covers seq, length and the
//	       values; the valid slot with the higher seq holds the values.
//
// A file in the format before (the JSON alone, written by rename) is read
// and rewritten in this one when opened.
type Stable struct {
	fs   log.FS
	path string

	mu     sync.Mutex
	values map[string][]byte
	// seq is the sequence number of the last durable slot; the next save
	// writes slot (seq+1)%2 with seq+1 and advances seq only once it is
	// durable, so a failed save never touches the last good slot.
	seq uint64
}

const (
	// stableSlotSize is the size of one slot in bytes: raft's three keys
	// and an address take about 150.
	stableSlotSize = 512
	// stableSlotHeader is the size of a slot's magic, seq, length and crc.
	stableSlotHeader = 20
)

var (
	stableMagic = [4]byte{'S', 'L', 'S', '2'}
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

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
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && size > 0 {
		return nil, fmt.Errorf("raftlog: read %s: %w", s.path, err)
	}
	switch {
	case size == 0 || b[0] == '{':
		if size > 0 {
			if err := json.Unmarshal(b, &s.values); err != nil {
				// Written whole by rename: a bad file is not a torn write.
				return nil, fmt.Errorf("raftlog: %s is corrupt: %w", s.path, err)
			}
		}
		// New or in the format before: lay out both slots once, by rename.
		if err := s.create(); err != nil {
			return nil, err
		}
	default:
		if err := s.load(b); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// load reads the values from the valid slot of b with the higher seq.
func (s *Stable) load(b []byte) error {
	found := false
	for slot := 0; slot < 2; slot++ {
		off := slot * stableSlotSize
		if len(b) < off+stableSlotHeader {
			continue
		}
		seq, payload, ok := decodeStableSlot(b[off:min(len(b), off+stableSlotSize)])
		if !ok || (found && seq <= s.seq) {
			continue
		}
		values := map[string][]byte{}
		if err := json.Unmarshal(payload, &values); err != nil {
			return fmt.Errorf("raftlog: %s slot %d is corrupt: %w", s.path, slot, err)
		}
		s.values, s.seq, found = values, seq, true
	}
	if !found {
		return fmt.Errorf("raftlog: %s is corrupt: neither slot is valid", s.path)
	}
	return nil
}

// decodeStableSlot returns the seq and values of a slot, and whether its
// magic, length and checksum hold.
func decodeStableSlot(b []byte) (seq uint64, payload []byte, ok bool) {
	if len(b) < stableSlotHeader || [4]byte(b[:4]) != stableMagic {
		return 0, nil, false
	}
	seq = binary.BigEndian.Uint64(b[4:12])
	n := binary.BigEndian.Uint32(b[12:16])
	if uint64(n) > uint64(len(b)-stableSlotHeader) {
		return 0, nil, false
	}
	payload = b[stableSlotHeader : stableSlotHeader+int(n)]
	sum := crc32.Update(crc32.Checksum(b[4:16], castagnoli), castagnoli, payload)
	if sum != binary.BigEndian.Uint32(b[16:20]) {
		return 0, nil, false
	}
	return seq, payload, true
}

// encodeStableSlot returns the slot holding values with seq.
func encodeStableSlot(seq uint64, values []byte) []byte {
	b := make([]byte, stableSlotHeader, stableSlotHeader+len(values))
	copy(b, stableMagic[:])
	binary.BigEndian.PutUint64(b[4:12], seq)
	binary.BigEndian.PutUint32(b[12:16], uint32(len(values)))
	b = append(b, values...)
	sum := crc32.Update(crc32.Checksum(b[4:16], castagnoli), castagnoli, values)
	binary.BigEndian.PutUint32(b[16:20], sum)
	return b
}

// Set stores val under key, durably. Setting the value a key already has
// writes nothing.
func (s *Stable) Set(key []byte, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.values[string(key)]
	if had && bytes.Equal(old, val) {
		// Already durable: raft sets the term it has when a candidate
		// steps down in the same term, which must not cost an fsync (the
		// transport runs such heartbeats on a connection's reader).
		return nil
	}
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

// encode returns the values as a slot's payload, checking that they fit.
func (s *Stable) encode() ([]byte, error) {
	b, err := json.Marshal(s.values)
	if err != nil {
		return nil, fmt.Errorf("raftlog: encode %s: %w", s.path, err)
	}
	if len(b) > stableSlotSize-stableSlotHeader {
		return nil, fmt.Errorf("raftlog: %s: values take %d bytes, a slot holds %d", s.path, len(b), stableSlotSize-stableSlotHeader)
	}
	return b, nil
}

// save writes the values into the slot not holding the last durable ones
// and syncs the file's data.
func (s *Stable) save() error {
	b, err := s.encode()
	if err != nil {
		return err
	}
	seq := s.seq + 1
	f, err := s.fs.OpenFile(s.path, false)
	if err != nil {
		return fmt.Errorf("raftlog: open %s: %w", s.path, err)
	}
	_, err = f.WriteAt(encodeStableSlot(seq, b), int64(seq%2)*stableSlotSize)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("raftlog: write %s: %w", s.path, err)
	}
	s.seq = seq
	return nil
}

// create writes a file of both slots (the values in one, an invalid other)
// to a temporary file and renames it over the store's file, so the slots
// exist before any save writes one in place.
func (s *Stable) create() error {
	b, err := s.encode()
	if err != nil {
		return err
	}
	s.seq = 1
	file := make([]byte, 2*stableSlotSize)
	copy(file[stableSlotSize:], encodeStableSlot(s.seq, b))
	tmp := s.path + ".tmp"
	f, err := s.fs.OpenFile(tmp, true)
	if err != nil {
		return fmt.Errorf("raftlog: create %s: %w", tmp, err)
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(file, 0)
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
