package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"

	"go.uber.org/zap"

	"github.com/sluice-io/sluice/log"
)

// Producer state snapshot, written by Close so that Open need not replay
// the whole log. All integers are big-endian.
//
//	offset  size  field
//	     0     4  magic                 "SLPS"
//	     4     2  version               (1)
//	     6     8  coveredOffset         log end offset the state covers
//	    14     8  anchorBaseOffset      base offset of the batch ending at
//	                                    coveredOffset, or -1 for none
//	    22     4  anchorCRC             that batch's CRC-32C field
//	    26     4  producerCount
//	    30     …  producers, by ascending id:
//	                 8  producerId
//	                 2  producerEpoch
//	                 1  batchCount       (at most 5), then per batch, oldest
//	                                     first:
//	                 4  firstSequence
//	                 4  lastSequence
//	                 8  baseOffset
//	                 8  lastOffset
//	                 8  maxTimestamp
//	   end-4     4  crc                  CRC-32C of every byte before it
//
// The anchor ties the snapshot to the log it was taken from: Open trusts
// the snapshot only if the log still holds that very batch, ending at
// coveredOffset.
const (
	snapshotFile      = "producer.snapshot"
	snapshotTempFile  = "producer.snapshot.tmp"
	snapshotMagic     = "SLPS"
	snapshotVersion   = 1
	snapshotHeaderLen = 30
	snapshotBatchLen  = 32
	snapshotEntryLen  = 11 // before its batches
)

var (
	crc32c = crc32.MakeTable(crc32.Castagnoli)

	errSnapshotCorrupt = errors.New("partition: corrupt producer snapshot")
)

// snapshot is the decoded content of a snapshot file.
type snapshot struct {
	covered          int64
	anchorBaseOffset int64
	anchorCRC        uint32
	entries          map[int64]producerEntry
}

// encodeSnapshot appends the snapshot of entries to dst.
func encodeSnapshot(dst []byte, s *snapshot) []byte {
	start := len(dst)
	dst = append(dst, snapshotMagic...)
	dst = binary.BigEndian.AppendUint16(dst, snapshotVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.covered))
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.anchorBaseOffset))
	dst = binary.BigEndian.AppendUint32(dst, s.anchorCRC)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.entries)))
	ids := make([]int64, 0, len(s.entries))
	for id := range s.entries {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		e := s.entries[id]
		dst = binary.BigEndian.AppendUint64(dst, uint64(id))
		dst = binary.BigEndian.AppendUint16(dst, uint16(e.epoch))
		dst = append(dst, byte(e.count))
		for _, m := range e.batches[:e.count] {
			dst = binary.BigEndian.AppendUint32(dst, uint32(m.firstSequence))
			dst = binary.BigEndian.AppendUint32(dst, uint32(m.lastSequence))
			dst = binary.BigEndian.AppendUint64(dst, uint64(m.baseOffset))
			dst = binary.BigEndian.AppendUint64(dst, uint64(m.lastOffset))
			dst = binary.BigEndian.AppendUint64(dst, uint64(m.timestamp))
		}
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crc32c))
}

// decodeSnapshot parses a whole snapshot file. Every error wraps
// errSnapshotCorrupt.
func decodeSnapshot(b []byte) (*snapshot, error) {
	if len(b) < snapshotHeaderLen+4 {
		return nil, fmt.Errorf("%w: %d bytes", errSnapshotCorrupt, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, crc32c); got != sum {
		return nil, fmt.Errorf("%w: crc %08x, file says %08x", errSnapshotCorrupt, got, sum)
	}
	if string(body[:4]) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad magic %q", errSnapshotCorrupt, body[:4])
	}
	if v := binary.BigEndian.Uint16(body[4:]); v != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errSnapshotCorrupt, v, snapshotVersion)
	}
	s := &snapshot{
		covered:          int64(binary.BigEndian.Uint64(body[6:])),
		anchorBaseOffset: int64(binary.BigEndian.Uint64(body[14:])),
		anchorCRC:        binary.BigEndian.Uint32(body[22:]),
	}
	count := binary.BigEndian.Uint32(body[26:])
	rest := body[snapshotHeaderLen:]
	// Bound the map by what the bytes can hold before allocating.
	if uint64(count) > uint64(len(rest)/snapshotEntryLen) {
		return nil, fmt.Errorf("%w: %d producers in %d bytes", errSnapshotCorrupt, count, len(rest))
	}
	s.entries = make(map[int64]producerEntry, count)
	var previous int64
	for i := uint32(0); i < count; i++ {
		if len(rest) < snapshotEntryLen {
			return nil, fmt.Errorf("%w: producer %d truncated", errSnapshotCorrupt, i)
		}
		id := int64(binary.BigEndian.Uint64(rest))
		e := producerEntry{epoch: int16(binary.BigEndian.Uint16(rest[8:])), count: int(rest[10])}
		rest = rest[snapshotEntryLen:]
		if e.count > producerWindow || len(rest) < e.count*snapshotBatchLen {
			return nil, fmt.Errorf("%w: producer %d has %d batches in %d bytes", errSnapshotCorrupt, id, e.count, len(rest))
		}
		for j := range e.batches[:e.count] {
			e.batches[j] = batchMetadata{
				firstSequence: int32(binary.BigEndian.Uint32(rest)),
				lastSequence:  int32(binary.BigEndian.Uint32(rest[4:])),
				baseOffset:    int64(binary.BigEndian.Uint64(rest[8:])),
				lastOffset:    int64(binary.BigEndian.Uint64(rest[16:])),
				timestamp:     int64(binary.BigEndian.Uint64(rest[24:])),
			}
			rest = rest[snapshotBatchLen:]
		}
		if i > 0 && id <= previous {
			return nil, fmt.Errorf("%w: producer %d after %d, ids must ascend", errSnapshotCorrupt, id, previous)
		}
		previous = id
		s.entries[id] = e
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errSnapshotCorrupt, len(rest))
	}
	return s, nil
}

// writeSnapshot writes s as dir's snapshot file, atomically: a temp file,
// synced, renamed over the old one, and the directory synced.
func writeSnapshot(fs log.FS, dir string, s *snapshot) error {
	data := encodeSnapshot(nil, s)
	temp, final := filepath.Join(dir, snapshotTempFile), filepath.Join(dir, snapshotFile)
	_ = fs.Remove(temp) // a leftover from a crash during an earlier Close
	f, err := fs.OpenFile(temp, true)
	if err != nil {
		return fmt.Errorf("write producer snapshot %s: %w", temp, err)
	}
	if err := writeAll(f, data); err != nil {
		_ = f.Close()
		_ = fs.Remove(temp)
		return fmt.Errorf("write producer snapshot %s: %w", temp, err)
	}
	if err := f.Close(); err != nil {
		_ = fs.Remove(temp)
		return fmt.Errorf("close producer snapshot %s: %w", temp, err)
	}
	if err := fs.Rename(temp, final); err != nil {
		_ = fs.Remove(temp)
		return fmt.Errorf("rename producer snapshot to %s: %w", final, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		return fmt.Errorf("sync directory %s after producer snapshot: %w", dir, err)
	}
	return nil
}

func writeAll(f log.File, data []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if n, err := f.WriteAt(data, 0); err != nil {
		return err
	} else if n != len(data) {
		return fmt.Errorf("short write: %d of %d bytes", n, len(data))
	}
	return f.Sync()
}

// readSnapshot reads and decodes the snapshot file at path.
func readSnapshot(fs log.FS, path string) (*snapshot, error) {
	f, err := fs.OpenFile(path, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	const maxSnapshot = 1 << 30
	if size > maxSnapshot {
		return nil, fmt.Errorf("%w: %d bytes", errSnapshotCorrupt, size)
	}
	data := make([]byte, size)
	if n, err := f.ReadAt(data, 0); n != len(data) {
		return nil, fmt.Errorf("read %d of %d bytes: %w", n, size, err)
	}
	return decodeSnapshot(data)
}

// snapshotOf captures the producer state as of the log end offset covered.
// It reads the header of the batch ending at covered, the anchor. Called
// with r.mu held, before the log is closed.
func (r *Replica) snapshotOf(covered int64) (*snapshot, error) {
	s := &snapshot{covered: covered, anchorBaseOffset: -1, entries: r.producers.entries}
	if covered <= r.log.StartOffset() {
		return s, nil
	}
	err := r.log.BatchHeaders(covered-1, func(h log.BatchHeader) bool {
		if h.NextOffset() == covered {
			s.anchorBaseOffset, s.anchorCRC = h.BaseOffset, h.CRC
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("read last batch header below offset %d: %w", covered, err)
	}
	return s, nil
}

// restoreStats says how Open rebuilt the producer state.
type restoreStats struct {
	fromSnapshot bool
	replayed     int
}

// loadProducerState rebuilds the producer state: from the snapshot if one
// is present and still describes this log, then from the batches after it;
// or from every batch in the log.
//
// The snapshot is removed once loaded, before the replica accepts appends.
// It describes the log only as it was at Close: once the log changes (new
// appends, a truncation by replication, a crash that tears the tail) an
// old snapshot could describe batches the log no longer holds. Removing it
// means a crash before the next clean Close rebuilds from the log, which is
// always right, merely slower. The anchor check is a second guard against a
// log that changed while the replica was closed.
func (r *Replica) loadProducerState() (restoreStats, error) {
	var stats restoreStats
	names, err := r.fs.ReadDir(r.dir)
	if err != nil {
		return stats, fmt.Errorf("partition: list %s: %w", r.dir, err)
	}
	hasSnapshot := slices.Contains(names, snapshotFile)
	if slices.Contains(names, snapshotTempFile) {
		// A Close crashed before its rename; the old snapshot, if any, is
		// whole.
		if err := r.fs.Remove(filepath.Join(r.dir, snapshotTempFile)); err != nil {
			return stats, fmt.Errorf("partition: remove stale %s: %w", snapshotTempFile, err)
		}
	}

	from := r.log.StartOffset()
	if hasSnapshot {
		s, err := readSnapshot(r.fs, r.snapshotPath())
		if err == nil {
			err = r.checkAnchor(s)
		}
		if err != nil {
			r.logger.Warn("producer snapshot ignored, rebuilding from the log", zap.Error(err))
		} else {
			r.producers.entries = s.entries
			from = max(s.covered, from)
			stats.fromSnapshot = true
		}
	}

	err = r.log.BatchHeaders(from, func(h log.BatchHeader) bool {
		r.producers.replay(&h)
		stats.replayed++
		return true
	})
	if err != nil {
		return stats, fmt.Errorf("partition: rebuild producer state of %s-%d from offset %d: %w", r.topic, r.partition, from, err)
	}

	if hasSnapshot {
		if err := r.fs.Remove(r.snapshotPath()); err != nil {
			return stats, fmt.Errorf("partition: remove loaded producer snapshot %s: %w", r.snapshotPath(), err)
		}
		if err := r.fs.SyncDir(r.dir); err != nil {
			return stats, fmt.Errorf("partition: sync %s after removing producer snapshot: %w", r.dir, err)
		}
	}
	return stats, nil
}

// checkAnchor reports whether snapshot s still describes r's log: it covers
// no more than the log holds and ends exactly where the batch it was taken
// after ends, with the same CRC.
func (r *Replica) checkAnchor(s *snapshot) error {
	next, start := r.log.NextOffset(), r.log.StartOffset()
	switch {
	case s.covered > next:
		return fmt.Errorf("%w: covers offsets up to %d, log ends at %d", errSnapshotCorrupt, s.covered, next)
	case s.covered <= start:
		// Nothing below the start is left to compare (retention removed
		// the anchor); every batch after covered is still there to replay.
		return nil
	case s.anchorBaseOffset < 0:
		return fmt.Errorf("%w: no anchor batch but covers offsets up to %d, log starts at %d", errSnapshotCorrupt, s.covered, start)
	}
	var anchored bool
	err := r.log.BatchHeaders(s.covered-1, func(h log.BatchHeader) bool {
		anchored = h.BaseOffset == s.anchorBaseOffset && h.NextOffset() == s.covered && h.CRC == s.anchorCRC
		return false
	})
	if err != nil {
		return fmt.Errorf("read anchor batch below offset %d: %w", s.covered, err)
	}
	if !anchored {
		return fmt.Errorf("%w: log no longer holds batch %d ending at %d", errSnapshotCorrupt, s.anchorBaseOffset, s.covered)
	}
	return nil
}
