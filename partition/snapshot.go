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
//	     4     2  version               (3; 1 and 2 are still read)
//	     6     8  coveredOffset         log end offset the state covers
//	    14     8  anchorBaseOffset      base offset of the batch ending at
//	                                    coveredOffset, or -1 for none
//	    22     4  anchorCRC             that batch's CRC-32C field
//	    26     4  producerCount
//	    30     …  producers, by ascending id:
//	                 8  producerId
//	                 2  producerEpoch
//	                 1  batchCount       (at most 5)
//	                 4  coordinatorEpoch (v2) of its last marker, or -1
//	                 8  txnFirstOffset   (v2) of its ongoing transaction,
//	                                     or -1
//	                 8  lastTimestamp    (v3) largest timestamp of its
//	                                     batches, or -1 (expire.go)
//	                    then per batch, oldest first:
//	                 4  firstSequence
//	                 4  lastSequence
//	                 8  baseOffset
//	                 8  lastOffset
//	                 8  maxTimestamp
//	       …     4  abortedCount        (v2) the aborted transaction index,
//	                                     by ascending last offset:
//	                 8  producerId
//	                 8  firstOffset
//	                 8  lastOffset       its ABORT marker's offset
//	       …     4  completedCount      (v2) transactions whose marker was
//	                                     not yet below the high watermark:
//	                 8  producerId
//	                 8  firstOffset
//	                 8  markerOffset
//	       …     8  clock               (v3) the partition's clock for
//	                                     producer expiry, or -1
//	   end-4     4  crc                  CRC-32C of every byte before it
//
// The anchor ties the snapshot to the log it was taken from: Open trusts
// the snapshot only if the log still holds that very batch, ending at
// coveredOffset. A version 1 snapshot (written before transactions, when
// the log could hold none) loads with no transaction state; a version 1
// or 2 one (before producer expiry) gives each producer its last batch's
// timestamp as its last timestamp (-1 without one: it never expires) and
// the partition the largest as its clock.
const (
	snapshotFile       = "producer.snapshot"
	snapshotTempFile   = "producer.snapshot.tmp"
	snapshotMagic      = "SLPS"
	snapshotVersion    = 3
	snapshotHeaderLen  = 30
	snapshotBatchLen   = 32
	snapshotEntryLenV1 = 11 // before its batches
	snapshotEntryLenV2 = 23 // before its batches
	snapshotEntryLen   = 31 // before its batches
	snapshotTxnLen     = 24 // an aborted or completed transaction
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
	// aborted is the aborted transaction index, completed the
	// transactions whose marker was not yet below the high watermark.
	aborted   []abortedRange
	completed []completedTxn
	// clock is the partition's clock for producer expiry.
	clock int64
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
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.coordinatorEpoch))
		first := int64(-1)
		if e.inTxn {
			first = e.txnFirstOffset
		}
		dst = binary.BigEndian.AppendUint64(dst, uint64(first))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.lastTimestamp))
		for _, m := range e.batches[:e.count] {
			dst = binary.BigEndian.AppendUint32(dst, uint32(m.firstSequence))
			dst = binary.BigEndian.AppendUint32(dst, uint32(m.lastSequence))
			dst = binary.BigEndian.AppendUint64(dst, uint64(m.baseOffset))
			dst = binary.BigEndian.AppendUint64(dst, uint64(m.lastOffset))
			dst = binary.BigEndian.AppendUint64(dst, uint64(m.timestamp))
		}
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.aborted)))
	for _, a := range s.aborted {
		dst = binary.BigEndian.AppendUint64(dst, uint64(a.producerID))
		dst = binary.BigEndian.AppendUint64(dst, uint64(a.first))
		dst = binary.BigEndian.AppendUint64(dst, uint64(a.last))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.completed)))
	for _, c := range s.completed {
		dst = binary.BigEndian.AppendUint64(dst, uint64(c.producerID))
		dst = binary.BigEndian.AppendUint64(dst, uint64(c.first))
		dst = binary.BigEndian.AppendUint64(dst, uint64(c.marker))
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.clock))
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
	version := binary.BigEndian.Uint16(body[4:])
	if version < 1 || version > snapshotVersion {
		return nil, fmt.Errorf("%w: version %d, want 1 to %d", errSnapshotCorrupt, version, snapshotVersion)
	}
	entryLen := snapshotEntryLen
	switch version {
	case 1:
		entryLen = snapshotEntryLenV1
	case 2:
		entryLen = snapshotEntryLenV2
	}
	s := &snapshot{
		covered:          int64(binary.BigEndian.Uint64(body[6:])),
		anchorBaseOffset: int64(binary.BigEndian.Uint64(body[14:])),
		anchorCRC:        binary.BigEndian.Uint32(body[22:]),
	}
	count := binary.BigEndian.Uint32(body[26:])
	rest := body[snapshotHeaderLen:]
	// Bound the map by what the bytes can hold before allocating.
	if uint64(count) > uint64(len(rest)/entryLen) {
		return nil, fmt.Errorf("%w: %d producers in %d bytes", errSnapshotCorrupt, count, len(rest))
	}
	s.entries = make(map[int64]producerEntry, count)
	var previous int64
	for i := uint32(0); i < count; i++ {
		if len(rest) < entryLen {
			return nil, fmt.Errorf("%w: producer %d truncated", errSnapshotCorrupt, i)
		}
		id := int64(binary.BigEndian.Uint64(rest))
		e := newProducerEntry(int16(binary.BigEndian.Uint16(rest[8:])))
		e.count = int(rest[10])
		if version >= 2 {
			e.coordinatorEpoch = int32(binary.BigEndian.Uint32(rest[11:]))
			switch first := int64(binary.BigEndian.Uint64(rest[15:])); {
			case first >= 0:
				e.inTxn, e.txnFirstOffset = true, first
			case first != -1:
				return nil, fmt.Errorf("%w: producer %d transaction at offset %d", errSnapshotCorrupt, id, first)
			}
		}
		if version >= 3 {
			e.lastTimestamp = int64(binary.BigEndian.Uint64(rest[23:]))
		}
		rest = rest[entryLen:]
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
		if version < 3 && e.count > 0 {
			e.lastTimestamp = e.batches[e.count-1].timestamp
		}
		if i > 0 && id <= previous {
			return nil, fmt.Errorf("%w: producer %d after %d, ids must ascend", errSnapshotCorrupt, id, previous)
		}
		previous = id
		s.entries[id] = e
	}
	if version >= 2 {
		var err error
		if s.aborted, rest, err = decodeSnapshotTxns(rest, "aborted", func(id, first, last int64) abortedRange {
			return abortedRange{id, first, last}
		}); err != nil {
			return nil, err
		}
		if s.completed, rest, err = decodeSnapshotTxns(rest, "completed", func(id, first, marker int64) completedTxn {
			return completedTxn{id, first, marker}
		}); err != nil {
			return nil, err
		}
	}
	s.clock = -1
	switch {
	case version >= 3:
		if len(rest) < 8 {
			return nil, fmt.Errorf("%w: no clock", errSnapshotCorrupt)
		}
		s.clock, rest = int64(binary.BigEndian.Uint64(rest)), rest[8:]
	default:
		for _, e := range s.entries {
			s.clock = max(s.clock, e.lastTimestamp)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errSnapshotCorrupt, len(rest))
	}
	return s, nil
}

// decodeSnapshotTxns decodes a count-prefixed list of transactions, each
// three int64s given to decode (what names the list in errors), and
// returns it and the bytes after it.
func decodeSnapshotTxns[T any](b []byte, what string, decode func(producerID, x, y int64) T) ([]T, []byte, error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%w: no %s transaction count", errSnapshotCorrupt, what)
	}
	count := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	if count > len(b)/snapshotTxnLen {
		return nil, nil, fmt.Errorf("%w: %d %s transactions in %d bytes", errSnapshotCorrupt, count, what, len(b))
	}
	out := make([]T, 0, count)
	for range count {
		out = append(out, decode(int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:])), int64(binary.BigEndian.Uint64(b[16:]))))
		b = b[snapshotTxnLen:]
	}
	return out, b, nil
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
	s := &snapshot{covered: covered, anchorBaseOffset: -1, entries: r.producers.entries, clock: r.producers.clock}
	s.aborted = *r.txns.aborted.Load()
	r.txns.mu.Lock()
	s.completed = slices.Clone(r.txns.unreplicated)
	r.txns.mu.Unlock()
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
			r.producers.clock = s.clock
			from = max(s.covered, from)
			stats.fromSnapshot = true
			r.restoreTxns(s)
		}
	}

	var (
		events  []txnEvent
		buf     []byte
		readErr error
	)
	err = r.log.BatchHeaders(from, func(h log.BatchHeader) bool {
		var marker *TxnMarker
		if h.Control() && h.Idempotent() {
			// Only a marker's record says whether it commits: read
			// the (small) control batch itself.
			var m TxnMarker
			var ok bool
			if m, ok, buf, readErr = r.readMarker(buf, &h); readErr != nil {
				return false
			}
			if ok {
				marker = &m
			}
		}
		if ev, ok := r.producers.replay(&h, marker); ok {
			events = append(events, ev)
		}
		r.observe(&h, h.MaxTimestamp)
		stats.replayed++
		return true
	})
	if err == nil {
		err = readErr
	}
	r.txns.record(events)
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

// restoreTxns sets the transaction state from snapshot s: the ongoing
// transactions of its producers, its aborted index and the completed
// transactions not yet known to be below the high watermark.
func (r *Replica) restoreTxns(s *snapshot) {
	r.txns.reset()
	r.txns.mu.Lock()
	for id, e := range s.entries {
		if e.inTxn {
			r.txns.ongoing[id] = e.txnFirstOffset
		}
	}
	r.txns.unreplicated = s.completed
	r.txns.mu.Unlock()
	aborted := s.aborted
	r.txns.aborted.Store(&aborted)
	r.txns.trimAborted(r.log.StartOffset())
}

// readMarker reads control batch h from the log into buf and decodes its
// marker (ok false: it holds none). It returns buf for reuse.
func (r *Replica) readMarker(buf []byte, h *log.BatchHeader) (m TxnMarker, ok bool, _ []byte, err error) {
	buf, err = r.log.Read(buf[:0], log.ReadRequest{Offset: h.BaseOffset, MaxOffset: h.NextOffset(), MaxBytes: h.Size(), MinOneBatch: true})
	if err != nil {
		return TxnMarker{}, false, buf, fmt.Errorf("read control batch at offset %d: %w", h.BaseOffset, err)
	}
	if len(buf) < h.Size() {
		return TxnMarker{}, false, buf, fmt.Errorf("read control batch at offset %d: %d of %d bytes", h.BaseOffset, len(buf), h.Size())
	}
	m, ok, err = decodeMarker(buf[:h.Size()], h)
	if err != nil {
		return TxnMarker{}, false, buf, fmt.Errorf("control batch at offset %d: %w", h.BaseOffset, err)
	}
	return m, ok, buf, nil
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
