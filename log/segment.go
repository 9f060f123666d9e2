package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// File name suffixes of a segment's three files and the clean-shutdown
// marker.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	cleanMarker     = ".clean"
	baseOffsetWidth = 20
)

// segmentName returns the file name of the segment based at base with the
// given suffix: the base offset zero-padded to 20 digits.
func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%0*d%s", baseOffsetWidth, base, suffix)
}

// parseSegmentName returns the base offset and suffix of a segment file
// name; ok is false for any other name.
func parseSegmentName(name string) (base int64, suffix string, ok bool) {
	dot := strings.IndexByte(name, '.')
	if dot != baseOffsetWidth {
		return 0, "", false
	}
	suffix = name[dot:]
	if suffix != logSuffix && suffix != indexSuffix && suffix != timeIndexSuffix {
		return 0, "", false
	}
	base, err := strconv.ParseInt(name[:dot], 10, 64)
	if err != nil || base < 0 {
		return 0, "", false
	}
	return base, suffix, true
}

// segment owns the files of one segment. It is shared by every state
// snapshot that lists the segment. The Log holds one reference from
// creation until it removes or closes the segment; syncs hold one while
// they use the pinned files. The last release closes them.
//
// A segment is pinned while it is written or awaits the sync that seals
// it (the active segment, a rolled one, a cleaned one being written): its
// three files stay open and the writer and syncs use log, index and
// timeIndex. Once sealed and synced it is unpinned: the index files close
// (their entries are in the views) and the .log file joins the FileCache,
// which opens it again on demand. Readers never use the pinned fields:
// they take a handle with openLog, which holds the file open until they
// release it.
type segment struct {
	base  int64
	dir   string
	fs    FS
	cache *FileCache
	// created is when the segment was created or opened, by the Log's
	// clock; the writer alone reads it (age roll).
	created time.Time
	// refs counts references; once it reaches zero the files are closed
	// and it never rises again (acquire fails).
	refs atomic.Int64

	// cached is the handle readers share: non-nil, it holds one reference
	// on the handle. It becomes non-nil under openMu and nil under
	// FileCache.mu (eviction, drop), so exactly one of them releases.
	cached atomic.Pointer[fileHandle]

	// openMu serialises opening the .log for readers with pinning,
	// unpinning and retiring, and guards the fields below.
	openMu sync.Mutex
	// gone is set once the segment's files were removed or replaced (or
	// its last reference released): openLog no longer opens them by name.
	gone bool
	// pin holds a reference on the handle of log while pinned, nil
	// otherwise. log, index and timeIndex are open while pinned; only the
	// writer and syncs use them, after pin and before unpin.
	pin                   *fileHandle
	log, index, timeIndex File
}

// acquire takes a reference, failing when the segment is already closed.
func (s *segment) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference; the last one retires the segment and closes
// the files it pins (readers' handles close when their reads end).
func (s *segment) release() error {
	if s.refs.Add(-1) != 0 {
		return nil
	}
	s.openMu.Lock()
	defer s.openMu.Unlock()
	err := s.retireLocked()
	if s.pin != nil {
		err = errors.Join(err, s.index.Close(), s.timeIndex.Close(), s.pin.release())
		s.pin, s.log, s.index, s.timeIndex = nil, nil, nil, nil
	}
	return err
}

// retire marks the segment's files as about to be removed or replaced:
// they leave the cache, and readers that did not hold them yet get
// errRetry and load a newer snapshot. Call it after publishing a state
// without the segment (or with its replacement) and before touching its
// files. Files a read or the pin holds stay open until released.
func (s *segment) retire() error {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	return s.retireLocked()
}

func (s *segment) retireLocked() error {
	s.gone = true
	if h := s.cache.drop(s); h != nil {
		return h.release()
	}
	return nil
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base, suffix))
}

// openLog returns a handle on the segment's .log for reading, through the
// cache; the caller releases it. It returns errRetry when the segment was
// removed or replaced since the caller loaded its snapshot.
func (s *segment) openLog() (*fileHandle, error) {
	for {
		if h := s.cached.Load(); h != nil {
			if h.tryAcquire() {
				return h, nil
			}
			// Evicted and closed since the load: cached changed.
			continue
		}
		s.openMu.Lock()
		if s.cached.Load() != nil {
			s.openMu.Unlock()
			continue
		}
		if s.gone {
			s.openMu.Unlock()
			return nil, errRetry
		}
		s.cache.makeRoom()
		f, err := s.fs.OpenFile(s.path(logSuffix), false)
		if isTooManyOpenFiles(err) {
			// The process is at its limit (connections, say): give back
			// every cached file no read holds and try once more, rather
			// than fail the read (and the replica) on a transient peak.
			s.cache.dropUnused()
			f, err = s.fs.OpenFile(s.path(logSuffix), false)
		}
		if err != nil {
			s.openMu.Unlock()
			if isTooManyOpenFiles(err) {
				return nil, fmt.Errorf("open segment %d: %w: the open file limit is reached; raise it or lower log.max.open.sealed.files", s.base, err)
			}
			return nil, fmt.Errorf("open segment %d: %w", s.base, err)
		}
		s.cache.opens.Add(1)
		h := &fileHandle{f: f, seg: s}
		h.refs.Store(2) // the segment's and the caller's
		h.used.Store(true)
		s.cached.Store(h)
		s.cache.insert(h)
		s.openMu.Unlock()
		return h, nil
	}
}

// openSegment opens (creating when create is set) the three files of the
// segment based at base, pinned, holding one reference for the caller.
func openSegment(fs FS, cache *FileCache, dir string, base int64, create bool, now time.Time) (*segment, error) {
	s := &segment{base: base, dir: dir, fs: fs, cache: cache, created: now}
	s.refs.Store(1)
	if err := s.pinFiles(s.path(logSuffix), s.path(indexSuffix), s.path(timeIndexSuffix), create); err != nil {
		return nil, fmt.Errorf("open segment %d: %w", base, err)
	}
	return s, nil
}

// pinFiles opens the three files at the given paths as the pinned files of
// a new segment (no reader knows it yet). The index files are derived
// data: they are always created if missing.
func (s *segment) pinFiles(logPath, indexPath, timeIndexPath string, create bool) error {
	var files [3]File
	for i, p := range []string{logPath, indexPath, timeIndexPath} {
		f, err := s.fs.OpenFile(p, create || i > 0)
		if err != nil {
			for _, g := range files[:i] {
				g.Close()
			}
			return err
		}
		files[i] = f
	}
	h := &fileHandle{f: files[0], seg: s}
	h.refs.Store(2) // cached and pin
	s.cached.Store(h)
	s.pin, s.log, s.index, s.timeIndex = h, files[0], files[1], files[2]
	return nil
}

// repin pins an unpinned segment again (TruncateTo makes a sealed segment
// active): the .log leaves the cache, or is opened, and the index files
// are opened. ErrClosed when the segment is gone.
func (s *segment) repin() error {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.pin != nil {
		return nil
	}
	if s.gone {
		return fmt.Errorf("pin segment %d: %w", s.base, ErrClosed)
	}
	h := s.cached.Load()
	if h != nil && !s.cache.take(h) {
		h = nil
	}
	if h == nil {
		f, err := s.fs.OpenFile(s.path(logSuffix), false)
		if err != nil {
			return fmt.Errorf("pin segment %d: %w", s.base, err)
		}
		h = &fileHandle{f: f, seg: s}
		h.refs.Store(1) // cached
		s.cached.Store(h)
	}
	index, err := s.fs.OpenFile(s.path(indexSuffix), true)
	var timeIndex File
	if err == nil {
		if timeIndex, err = s.fs.OpenFile(s.path(timeIndexSuffix), true); err != nil {
			index.Close()
		}
	}
	if err != nil {
		s.cache.insert(h) // back to the cache, unpinned
		return fmt.Errorf("pin segment %d: %w", s.base, err)
	}
	h.refs.Add(1) // the pin's; cached still holds it, so it is open
	s.pin, s.log, s.index, s.timeIndex = h, h.f, index, timeIndex
	return nil
}

// unpin closes the index files of a sealed, synced segment and hands its
// .log to the cache.
func (s *segment) unpin() error {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.pin == nil {
		return nil
	}
	err := errors.Join(s.index.Close(), s.timeIndex.Close())
	// While pinned, cached is the pin's handle, or nil once retired.
	if !s.gone && s.cached.Load() == s.pin {
		s.cache.insert(s.pin)
	}
	err = errors.Join(err, s.pin.release())
	s.pin, s.log, s.index, s.timeIndex = nil, nil, nil, nil
	return err
}

// remove retires the segment and deletes its files from the directory;
// handles already open stay usable until released.
func (s *segment) remove() error {
	errs := []error{s.retire()}
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := s.fs.Remove(s.path(suffix)); err != nil && !isNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// segmentView is an immutable description of a segment's contents, part of
// a state snapshot. Its slices are never written after publication: the
// writer only appends beyond their length, and copies before shrinking.
type segmentView struct {
	seg *segment
	// base is the segment's base offset; next is the offset after its last
	// batch (base when empty).
	base, next int64
	// size is the length of the .log that holds whole batches.
	size int64
	// maxTimestamp is the largest batch MaxTimestamp in the segment, or
	// math.MinInt64 when it is empty.
	maxTimestamp int64
	index        []indexEntry
	times        []timeEntry
}

func (v *segmentView) empty() bool { return v.size == 0 }

// emptyView describes a segment with no batches.
func emptyView(seg *segment) segmentView {
	return segmentView{seg: seg, base: seg.base, next: seg.base, maxTimestamp: math.MinInt64}
}

// batchScanner walks the batches of a segment file from a position,
// reading through a pooled buffer; release returns it.
type batchScanner struct {
	f      File
	pos    int64 // position of the next batch
	end    int64 // file size considered
	verify bool  // VerifyBatch each batch (reads whole batches)
	chunk  int   // bytes to read at a time
	buf    []byte
	bufPos int64 // file position of buf[0]
	pooled *[]byte
}

// Read sizes: a header walk reads a few batches' worth (an index interval
// is 4 KiB by default); a verifying scan reads whole batches in bulk.
const (
	headerChunkSize = 4 << 10
	scanBufferSize  = 64 << 10
)

var (
	headerChunks = sync.Pool{New: func() any { b := make([]byte, headerChunkSize); return &b }}
	scanBuffers  = sync.Pool{New: func() any { b := make([]byte, scanBufferSize); return &b }}
)

func newBatchScanner(f File, pos, end int64, verify bool) *batchScanner {
	s := &batchScanner{f: f, pos: pos, end: end, verify: verify, chunk: headerChunkSize}
	if verify {
		s.chunk, s.pooled = scanBufferSize, scanBuffers.Get().(*[]byte)
	} else {
		s.pooled = headerChunks.Get().(*[]byte)
	}
	s.buf = (*s.pooled)[:0]
	return s
}

// release returns the scanner's buffer to its pool.
func (s *batchScanner) release() {
	if s.pooled == nil {
		return
	}
	if s.verify {
		scanBuffers.Put(s.pooled)
	} else {
		headerChunks.Put(s.pooled)
	}
	s.pooled, s.buf = nil, nil
}

// window returns the file bytes [pos, pos+n), clipped to end, reading as
// needed. The result is valid until the next call.
func (s *batchScanner) window(n int) ([]byte, error) {
	if rest := s.end - s.pos; int64(n) > rest {
		n = int(rest)
	}
	if s.pos >= s.bufPos && s.pos+int64(n) <= s.bufPos+int64(len(s.buf)) {
		off := s.pos - s.bufPos
		return s.buf[off : off+int64(n)], nil
	}
	want := max(n, s.chunk)
	if rest := s.end - s.pos; int64(want) > rest {
		want = int(rest)
	}
	if cap(s.buf) < want {
		// A batch bigger than the pooled buffer: this one is not pooled.
		s.release()
		s.buf = make([]byte, want)
	}
	s.buf = s.buf[:want]
	read, err := s.f.ReadAt(s.buf, s.pos)
	s.buf = s.buf[:read]
	s.bufPos = s.pos
	if read < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return s.buf[:n], nil
}

// next returns the header and position of the next batch and moves past
// it. It returns io.EOF exactly at end; errors wrapping ErrShortBatch or
// ErrCorrupt mark where the valid batches stop (s.pos stays there); other
// errors are I/O errors.
func (s *batchScanner) next() (BatchHeader, int64, error) {
	if s.pos >= s.end {
		return BatchHeader{}, s.pos, io.EOF
	}
	if s.end-s.pos < BatchHeaderSize {
		return BatchHeader{}, s.pos, fmt.Errorf("%w: %d bytes left at position %d", ErrShortBatch, s.end-s.pos, s.pos)
	}
	b, err := s.window(BatchHeaderSize)
	if err != nil {
		return BatchHeader{}, s.pos, err
	}
	h, err := ParseBatchHeader(b)
	if err != nil {
		return h, s.pos, fmt.Errorf("position %d: %w", s.pos, err)
	}
	size := int64(h.Size())
	if size > s.end-s.pos {
		return h, s.pos, fmt.Errorf("%w: batch of %d bytes at position %d, %d left", ErrShortBatch, size, s.pos, s.end-s.pos)
	}
	if s.verify {
		b, err := s.window(int(size))
		if err != nil {
			return h, s.pos, err
		}
		if h, err = VerifyBatch(b); err != nil {
			return h, s.pos, fmt.Errorf("position %d: %w", s.pos, err)
		}
	} else if h.LastOffsetDelta < 0 {
		return h, s.pos, fmt.Errorf("%w: negative lastOffsetDelta %d at position %d", ErrCorrupt, h.LastOffsetDelta, s.pos)
	}
	pos := s.pos
	s.pos += size
	return h, pos, nil
}

// isBadData reports whether err marks bad bytes rather than an I/O failure.
func isBadData(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrShortBatch)
}
