package log

import (
	"sync"
	"sync/atomic"
)

// DefaultMaxOpenSealedFiles is the default limit of a FileCache: how many
// sealed segments' .log files stay open at once (log.max.open.sealed.files).
const DefaultMaxOpenSealedFiles = 1024

// DefaultFileCache is the FileCache of every Log opened without
// Options.FileCache. There is one per process because the limit it
// protects, RLIMIT_NOFILE, is per process; cmd/sluice sets its limit from
// log.max.open.sealed.files before opening any log.
var DefaultFileCache = NewFileCache(DefaultMaxOpenSealedFiles)

// FileCache keeps the .log files of sealed segments open for reading, at
// most Limit of them at once across every Log that shares it, and closes
// the least recently used (CLOCK: a use marks a file, eviction passes over
// marked or in-use files once) to open another. A Log's active segment,
// and a rolled segment until its files are synced, keep their three files
// open outside the cache; sealed segments keep no index file open (their
// entries are in memory). A read holds its file until it is done, so a
// file the cache evicts closes when its last reader finishes: at any time
// at most Limit + (reads in flight) sealed files are open. A segment that
// is removed or replaced leaves the cache at once. Safe for concurrent
// use.
type FileCache struct {
	// mu guards the ring and the fields below it. Lock order: a
	// segment's openMu, then mu. Files are closed after mu is released.
	mu sync.Mutex
	// hand is the CLOCK hand in the ring of cached handles (a circular
	// doubly linked list through fileHandle.prev/next); nil when empty.
	hand  *fileHandle
	open  int
	limit int

	opens, evictions atomic.Int64
}

// NewFileCache returns a cache keeping at most limit files open (at least
// 1).
func NewFileCache(limit int) *FileCache {
	return &FileCache{limit: max(limit, 1)}
}

// SetLimit changes the limit (at least 1), closing files beyond it that no
// read holds.
func (c *FileCache) SetLimit(limit int) {
	c.mu.Lock()
	c.limit = max(limit, 1)
	victims := c.evictLocked(c.limit)
	c.mu.Unlock()
	closeHandles(victims)
}

// FileCacheStats describes a FileCache, for metrics and tests.
type FileCacheStats struct {
	// Open is the number of files in the cache now (files evicted but
	// still held by a read are not counted).
	Open int
	// Limit is the configured limit.
	Limit int
	// Opens counts files opened on a miss since the cache was made.
	Opens int64
	// Evictions counts files the cache closed (or let close once their
	// reads end) to stay within Limit.
	Evictions int64
}

// Stats returns the cache's counters.
func (c *FileCache) Stats() FileCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return FileCacheStats{Open: c.open, Limit: c.limit, Opens: c.opens.Load(), Evictions: c.evictions.Load()}
}

// fileHandle is an open .log file of one segment, shared by its readers
// and, while the segment is active or awaits its seal sync, its writer.
type fileHandle struct {
	f   File
	seg *segment
	// refs counts holders: the segment while its cached field points
	// here, the segment's pin while it is pinned, and each read in
	// flight. The file closes when it reaches zero, and it never rises
	// again (tryAcquire fails).
	refs atomic.Int64
	// used is the CLOCK mark: set by a read, cleared by the passing hand.
	used atomic.Bool
	// prev and next link the cache's ring; inRing says whether the handle
	// is in it (only unpinned segments' handles are). Guarded by
	// FileCache.mu.
	prev, next *fileHandle
	inRing     bool
}

// tryAcquire takes a reference for a read, failing once the file closed.
func (h *fileHandle) tryAcquire() bool {
	for {
		n := h.refs.Load()
		if n <= 0 {
			return false
		}
		if h.refs.CompareAndSwap(n, n+1) {
			if !h.used.Load() {
				h.used.Store(true)
			}
			return true
		}
	}
}

// release drops a reference, closing the file with the last one and
// returning the close error.
func (h *fileHandle) release() error {
	if h.refs.Add(-1) == 0 {
		return h.f.Close()
	}
	return nil
}

func closeHandles(hs []*fileHandle) {
	for _, h := range hs {
		// A read-only descriptor's close error tells nothing: the data
		// was synced before the segment entered the cache.
		_ = h.release()
	}
}

// insert puts h, the cached handle of an unpinned segment, in the ring
// and evicts down to the limit. The caller holds h.seg.openMu.
func (c *FileCache) insert(h *fileHandle) {
	c.mu.Lock()
	if c.hand == nil {
		h.prev, h.next = h, h
		c.hand = h
	} else {
		// Just behind the hand: the last the hand reaches.
		h.prev, h.next = c.hand.prev, c.hand
		c.hand.prev.next = h
		c.hand.prev = h
	}
	h.inRing = true
	c.open++
	victims := c.evictLocked(c.limit)
	c.mu.Unlock()
	closeHandles(victims)
}

// makeRoom evicts down to one below the limit, before a miss opens a file,
// so that a reader alone never has more than the limit open.
func (c *FileCache) makeRoom() {
	c.mu.Lock()
	victims := c.evictLocked(c.limit - 1)
	c.mu.Unlock()
	closeHandles(victims)
}

// dropUnused closes every cached file no read holds, for a process that
// ran out of descriptors.
func (c *FileCache) dropUnused() {
	c.mu.Lock()
	var victims []*fileHandle
	for n := c.open; n > 0; n-- {
		h := c.hand
		c.hand = h.next
		if h.refs.Load() > 1 {
			continue
		}
		c.unlinkLocked(h)
		if h.seg.cached.CompareAndSwap(h, nil) {
			victims = append(victims, h)
		}
		c.evictions.Add(1)
	}
	c.mu.Unlock()
	closeHandles(victims)
}

// take removes h from the ring for a segment being pinned, reporting
// whether h is still the segment's cached handle (not evicted). The caller
// holds h.seg.openMu.
func (c *FileCache) take(h *fileHandle) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.seg.cached.Load() != h {
		return false
	}
	if h.inRing {
		c.unlinkLocked(h)
	}
	return true
}

// drop clears seg's cached handle, taking it out of the ring, and returns
// it (nil if none) for the caller to release: the segment was removed or
// replaced, or its last reference is gone. The caller holds seg.openMu.
func (c *FileCache) drop(seg *segment) *fileHandle {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := seg.cached.Swap(nil)
	if h != nil && h.inRing {
		c.unlinkLocked(h)
	}
	return h
}

func (c *FileCache) unlinkLocked(h *fileHandle) {
	if h.next == h {
		c.hand = nil
	} else {
		h.prev.next = h.next
		h.next.prev = h.prev
		if c.hand == h {
			c.hand = h.next
		}
	}
	h.prev, h.next, h.inRing = nil, nil, false
	c.open--
}

// evictLocked takes handles out of the ring until at most target remain
// and returns them for release after mu is unlocked. The hand passes over
// a marked or in-use handle (clearing its mark) for up to two turns, then
// evicts regardless: an in-use file closes when its reads end.
func (c *FileCache) evictLocked(target int) []*fileHandle {
	var victims []*fileHandle
	spare := 2 * c.open
	for c.open > max(target, 0) {
		h := c.hand
		c.hand = h.next
		if spare > 0 && (h.used.Load() || h.refs.Load() > 1) {
			h.used.Store(false)
			spare--
			continue
		}
		c.unlinkLocked(h)
		// In the ring, h is its segment's cached handle: clearing it
		// hands over the segment's reference.
		if h.seg.cached.CompareAndSwap(h, nil) {
			victims = append(victims, h)
		}
		c.evictions.Add(1)
	}
	return victims
}
