package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
)

// ReadRequest says what Read returns.
type ReadRequest struct {
	// Offset is the first offset wanted; the batch containing it is the
	// first batch returned.
	Offset int64
	// MaxOffset is exclusive: no batch whose last offset is >= MaxOffset is
	// returned (the high watermark or last stable offset).
	MaxOffset int64
	// MaxBytes bounds the bytes returned; only whole batches are returned.
	MaxBytes int
	// MinOneBatch returns the first batch even when it is larger than
	// MaxBytes (KIP-74), so a consumer can always make progress.
	MinOneBatch bool
	// Buffer, if set, is called when dst has no room for what Read is
	// about to read, instead of growing dst on the heap: it returns a
	// slice with capacity for at least size bytes, its contents undefined,
	// into which Read copies dst and then reads. The caller owns every
	// slice Buffer returns, including ones a later call superseded.
	Buffer func(size int) []byte
}

// errRetry tells a reader that a segment of its snapshot is gone (removed
// by retention, TruncateTo or Close, or replaced by compaction) and its
// file was not open: it must load the state again, which no longer lists
// it.
var errRetry = errors.New("log: segment closed under reader")

// Read appends to dst whole batches starting with the one that contains
// r.Offset and returns the extended slice. Offset == NextOffset (or an
// offset with nothing below MaxOffset) returns dst unchanged. An offset
// below StartOffset or above NextOffset is ErrOffsetOutOfRange. Safe for
// concurrent use with Append; the batches come from one snapshot of the
// log. Bytes on disk that stopped parsing since Open are an error wrapping
// ErrCorrupt.
func (l *Log) Read(dst []byte, r ReadRequest) ([]byte, error) {
	for {
		s := l.state.Load()
		if s.closed {
			return dst, ErrClosed
		}
		start, next := s.startOffset(), s.active.next
		if r.Offset < start || r.Offset > next {
			return dst, fmt.Errorf("read offset %d, log holds [%d, %d): %w", r.Offset, start, next, ErrOffsetOutOfRange)
		}
		if r.Offset == next || r.MaxOffset <= r.Offset || (r.MaxBytes <= 0 && !r.MinOneBatch) {
			return dst, nil
		}
		out, err := readState(dst, s, r)
		if l.retry(err, s) {
			continue
		}
		return out, err
	}
}

// retry reports whether err is errRetry and a newer state was published
// since s: the reader loads it and starts over. A segment is retired only
// after a state without it is published, so errRetry on the current state
// would be a bug; it is returned as an error rather than looped on.
func (l *Log) retry(err error, s *state) bool {
	return errors.Is(err, errRetry) && l.state.Load() != s
}

// readState is Read on one snapshot.
func readState(dst []byte, s *state, r ReadRequest) ([]byte, error) {
	out := dst
	remaining := int64(r.MaxBytes)
	first := true
	for i := s.find(r.Offset); i < s.count(); i++ {
		v := s.view(i)
		if v.base >= r.MaxOffset {
			break // every batch here ends at or past MaxOffset
		}
		if v.next <= r.Offset || v.empty() {
			continue
		}
		var done bool
		var err error
		out, done, err = readView(out, v, r, &remaining, &first)
		if err != nil {
			return dst, err
		}
		if done {
			break
		}
	}
	return out, nil
}

// readView appends the wanted batches of one segment to out; done reports
// that a limit stopped the read.
func readView(out []byte, v *segmentView, r ReadRequest, remaining *int64, first *bool) (_ []byte, done bool, err error) {
	fh, err := v.seg.openLog()
	if err != nil {
		return out, false, err
	}
	defer fh.release()
	f := fh.f
	pos, firstSize := int64(0), int64(0)
	if r.Offset > v.base {
		from, _ := lookupIndex(v.index, uint32(r.Offset-v.base))
		sc := newBatchScanner(f, from, v.size, false)
		defer sc.release()
		for {
			h, at, err := sc.next()
			if err != nil {
				return out, false, fmt.Errorf("read offset %d in segment %d: %w", r.Offset, v.base, unexpected(err))
			}
			if h.LastOffset() >= r.Offset {
				pos, firstSize = at, int64(h.Size())
				break
			}
		}
	}
	want := min(*remaining, v.size-pos)
	if r.MaxOffset < v.next && r.MaxOffset > v.base {
		// The first indexed batch based above MaxOffset is excluded, and
		// so is everything after it: read no further (a read_committed
		// fetch may stop far below the log end).
		rel := uint32(r.MaxOffset - v.base)
		if k := sort.Search(len(v.index), func(i int) bool { return v.index[i].relativeOffset > rel }); k < len(v.index) {
			want = min(want, int64(v.index[k].position)-pos)
		}
	}
	if *first && r.MinOneBatch {
		if firstSize == 0 {
			sc := newBatchScanner(f, pos, v.size, false)
			defer sc.release()
			h, _, err := sc.next()
			if err != nil {
				return out, false, fmt.Errorf("read offset %d in segment %d: %w", r.Offset, v.base, unexpected(err))
			}
			firstSize = int64(h.Size())
		}
		want = max(want, firstSize)
	}
	if want <= 0 {
		return out, true, nil
	}
	start := len(out)
	if cap(out)-start < int(want) && r.Buffer != nil {
		out = append(r.Buffer(start + int(want))[:0], out...)
	}
	out = slices.Grow(out, int(want))
	buf := out[start : start+int(want)]
	n, err := f.ReadAt(buf, pos)
	if err != nil && !errors.Is(err, io.EOF) {
		return out[:start], false, fmt.Errorf("read offset %d in segment %d at position %d: %w", r.Offset, v.base, pos, err)
	}
	if wn, ok := f.(WillNeeder); ok && pos+want < v.size {
		// A consumer reads on from here next: have the disk fetch that
		// while these bytes are sent (no-op when already cached).
		wn.WillNeed(pos+want, min(want, v.size-pos-want))
	}
	// A short read means a concurrent TruncateTo cut the file; serve the
	// whole batches that were read.
	buf = buf[:n]
	used := 0
	for used < len(buf) {
		h, err := ParseBatchHeader(buf[used:])
		if err != nil || h.Size() > len(buf)-used {
			if errors.Is(err, ErrCorrupt) {
				return out[:start], false, fmt.Errorf("read offset %d in segment %d at position %d: %w", r.Offset, v.base, pos+int64(used), err)
			}
			done = true // MaxBytes reached
			break
		}
		if h.LastOffset() >= r.MaxOffset {
			done = true
			break
		}
		used += h.Size()
		*first = false
	}
	*remaining -= int64(used)
	if *remaining <= 0 || pos+int64(used) < v.size {
		done = true
	}
	return out[:start+used], done, nil
}

// unexpected turns an io.EOF from a batchScanner that ran off its snapshot
// into corruption: the snapshot promises whole batches.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: batch missing before the end of the segment", ErrCorrupt)
	}
	return err
}

// BatchHeaders calls fn for the header of every batch whose last offset is
// >= from, in offset order, until fn returns false or the log ends. It reads
// only headers. Used to rebuild producer state. A from below StartOffset
// starts at the first batch.
func (l *Log) BatchHeaders(from int64, fn func(BatchHeader) bool) error {
	for {
		s := l.state.Load()
		if s.closed {
			return ErrClosed
		}
		from = max(from, s.startOffset())
		if from >= s.active.next {
			return nil
		}
		var stop bool
		var err error
		for i := s.find(from); i < s.count() && !stop && err == nil; i++ {
			stop, err = headersView(s.view(i), &from, fn)
		}
		if l.retry(err, s) {
			continue
		}
		return err
	}
}

// headersView calls fn for the batches of one segment from *from on,
// advancing *from past each batch delivered.
func headersView(v *segmentView, from *int64, fn func(BatchHeader) bool) (stop bool, err error) {
	if v.empty() || v.next <= *from {
		return false, nil
	}
	fh, err := v.seg.openLog()
	if err != nil {
		return false, err
	}
	defer fh.release()
	pos := int64(0)
	if *from > v.base {
		pos, _ = lookupIndex(v.index, uint32(*from-v.base))
	}
	sc := newBatchScanner(fh.f, pos, v.size, false)
	defer sc.release()
	for {
		h, _, err := sc.next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return true, fmt.Errorf("read batch headers in segment %d: %w", v.base, err)
		}
		if h.LastOffset() < *from {
			continue
		}
		*from = h.NextOffset()
		if !fn(h) {
			return true, nil
		}
	}
}

// FindTimestamp returns the bytes of the first batch (in offset order) whose
// MaxTimestamp is >= ts, using the time index, appended to dst; found is
// false when no batch qualifies.
func (l *Log) FindTimestamp(dst []byte, ts int64) (batch []byte, found bool, err error) {
	for {
		s := l.state.Load()
		if s.closed {
			return dst, false, ErrClosed
		}
		err = nil
		for i := range s.count() {
			v := s.view(i)
			if v.empty() || v.maxTimestamp < ts {
				continue
			}
			batch, found, err = findInView(dst, v, ts)
			if errors.Is(err, errRetry) {
				break
			}
			if err != nil || found {
				return batch, found, err
			}
		}
		if !l.retry(err, s) {
			return dst, false, err
		}
	}
}

// MaxTimestamp returns the largest MaxTimestamp of any batch in the log and
// the bytes of the first batch that has it (appended to dst); found is false
// for an empty log.
func (l *Log) MaxTimestamp(dst []byte) (ts int64, batch []byte, found bool, err error) {
	for {
		s := l.state.Load()
		if s.closed {
			return 0, dst, false, ErrClosed
		}
		best := -1
		ts = math.MinInt64
		for i := range s.count() {
			if v := s.view(i); !v.empty() && (best < 0 || v.maxTimestamp > ts) {
				best, ts = i, v.maxTimestamp
			}
		}
		if best < 0 {
			return 0, dst, false, nil
		}
		batch, found, err = findInView(dst, s.view(best), ts)
		if l.retry(err, s) {
			continue
		}
		if err == nil && !found {
			err = fmt.Errorf("%w: segment %d has no batch with its max timestamp %d", ErrCorrupt, s.view(best).base, ts)
		}
		return ts, batch, found, err
	}
}

// findInView appends the first batch of v whose MaxTimestamp is >= ts.
func findInView(dst []byte, v *segmentView, ts int64) ([]byte, bool, error) {
	fh, err := v.seg.openLog()
	if err != nil {
		return dst, false, err
	}
	defer fh.release()
	pos := int64(0)
	if k := lookupTime(v.times, ts); k >= 0 {
		pos = int64(v.index[k].position)
	}
	sc := newBatchScanner(fh.f, pos, v.size, false)
	defer sc.release()
	for {
		h, at, err := sc.next()
		if errors.Is(err, io.EOF) {
			return dst, false, nil
		}
		if err != nil {
			return dst, false, fmt.Errorf("find timestamp %d in segment %d: %w", ts, v.base, err)
		}
		if h.MaxTimestamp < ts {
			continue
		}
		start := len(dst)
		dst = slices.Grow(dst, h.Size())[:start+h.Size()]
		if n, err := fh.f.ReadAt(dst[start:], at); n < h.Size() {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return dst[:start], false, fmt.Errorf("find timestamp %d in segment %d: %w", ts, v.base, err)
		}
		return dst, true, nil
	}
}
