package log

import "time"

// Stats describes a log's size from one snapshot, for metrics.
type Stats struct {
	// Bytes is the total size of the segments' .log files (indexes not
	// included).
	Bytes int64
	// Segments is the number of segments, the active one included.
	Segments int
}

// Stats returns the log's size. It allocates nothing and takes no lock, so
// a metrics scrape over thousands of logs stays cheap. A closed log
// reports zero. Safe for concurrent use.
func (l *Log) Stats() Stats {
	s := l.state.Load()
	if s.closed {
		return Stats{}
	}
	st := Stats{Segments: s.count()}
	for i := range st.Segments {
		st.Bytes += s.view(i).size
	}
	return st
}

// SyncInfo describes one sync of one log by a Flusher round.
type SyncInfo struct {
	// Took is how long the log's file syncs took (fdatasync of the active
	// segment, plus every file of segments rolled since the last sync).
	Took time.Duration
	// Bytes is how many appended bytes the sync made durable.
	Bytes int64
}

// SyncObserver is called by the Flusher after each successful sync of a
// log that had appends, from the flusher's goroutine: it must not block.
type SyncObserver func(SyncInfo)

// SetSyncObserver installs fn (nil removes it). Safe for concurrent use;
// rounds that start later call it.
func (f *Flusher) SetSyncObserver(fn SyncObserver) {
	if fn == nil {
		f.observer.Store(nil)
		return
	}
	f.observer.Store(&fn)
}
