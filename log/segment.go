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

// segment owns the open files of one segment. It is shared by every state
// snapshot that lists the segment; the files close when the last reference
// is released. The Log holds one reference from creation until it removes
// or closes the segment; readers and syncs hold one while they use the
// files.
type segment struct {
	base      int64
	dir       string
	fs        FS
	log       File
	index     File
	timeIndex File
	// created is when the segment was created or opened, by the Log's
	// clock; the writer alone reads it (age roll).
	created time.Time
	// refs counts references; once it reaches zero the files are closed
	// and it never rises again (acquire fails).
	refs atomic.Int64
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

// release drops a reference, closing the files with the last one.
func (s *segment) release() error {
	if s.refs.Add(-1) != 0 {
		return nil
	}
	return errors.Join(s.log.Close(), s.index.Close(), s.timeIndex.Close())
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base, suffix))
}

// openSegment opens (creating when create is set) the three files of the
// segment based at base, holding one reference for the caller.
func openSegment(fs FS, dir string, base int64, create bool, now time.Time) (*segment, error) {
	s := &segment{base: base, dir: dir, fs: fs, created: now}
	var err error
	if s.log, err = fs.OpenFile(s.path(logSuffix), create); err != nil {
		return nil, fmt.Errorf("open segment %d: %w", base, err)
	}
	// The index files are derived data: always create them if missing.
	if s.index, err = fs.OpenFile(s.path(indexSuffix), true); err != nil {
		s.log.Close()
		return nil, fmt.Errorf("open segment %d index: %w", base, err)
	}
	if s.timeIndex, err = fs.OpenFile(s.path(timeIndexSuffix), true); err != nil {
		s.log.Close()
		s.index.Close()
		return nil, fmt.Errorf("open segment %d time index: %w", base, err)
	}
	s.refs.Store(1)
	return s, nil
}

// remove deletes the segment's files from the directory; open handles stay
// usable until the last reference is released.
func (s *segment) remove() error {
	var errs []error
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
