package log

import (
	"fmt"

	"go.uber.org/zap"
)

// syncJob is what one sync of a log covers, captured under syncMu before
// any file is synced so that the offset it makes durable is truthful.
type syncJob struct {
	// rolled are sealed segments: all three files are synced, so that a
	// clean marker can later vouch for their indexes.
	rolled []*segment
	// active is the active segment; its .log is synced.
	active *segment
	// activeIndexes also syncs the active segment's index files (Close).
	activeIndexes bool
	// syncDir syncs the log's directory first (a roll created files).
	fs      FS
	dir     string
	syncDir bool
	// next is the log end offset when the job was captured: every batch
	// below it is written to the OS.
	next int64
	// appended is state.appended when captured.
	appended int64
	// noop is set when nothing was appended since the last sync.
	noop bool
	// recoveryPoint, when above the stored one, is written after the
	// rolled segments are synced: every segment below it is then durable.
	recoveryPoint int64
}

// prepareSync captures a sync job, taking references on its segments. The
// caller holds syncMu and must pass the job to finishSync. ok is false when
// the log is closed.
func (l *Log) prepareSync(activeIndexes bool) (job syncJob, ok bool) {
	l.pendingMu.Lock()
	defer l.pendingMu.Unlock()
	s := l.state.Load()
	if s.closed || !s.active.seg.acquire() {
		return job, false
	}
	job = syncJob{
		rolled:        l.rolled,
		active:        s.active.seg,
		activeIndexes: activeIndexes,
		next:          s.active.next,
		appended:      s.appended,
		fs:            l.fs,
		dir:           l.dir,
		syncDir:       l.dirPending,
	}
	if len(job.rolled) > 0 && s.active.base > l.recoveryPoint {
		job.recoveryPoint = s.active.base
	}
	job.noop = len(job.rolled) == 0 && !activeIndexes && !job.syncDir && job.appended == l.syncedBytes
	l.rolled = nil
	l.dirPending = false
	return job, true
}

// run syncs the job's files and returns how many syncs it did. It takes no
// lock, so a flusher round runs many concurrently.
func (j *syncJob) run() (syncs int64, err error) {
	if j.noop {
		return 0, nil
	}
	if j.syncDir {
		if err := j.fs.SyncDir(j.dir); err != nil {
			return 0, fmt.Errorf("sync directory: %w", err)
		}
	}
	for _, seg := range j.rolled {
		for _, f := range []File{seg.log, seg.index, seg.timeIndex} {
			syncs++
			if err := f.Sync(); err != nil {
				return syncs, fmt.Errorf("sync segment %d: %w", seg.base, err)
			}
		}
	}
	if j.recoveryPoint > 0 {
		if err := writeRecoveryPoint(j.fs, j.dir, j.recoveryPoint); err != nil {
			return syncs, err
		}
	}
	files := []File{j.active.log}
	if j.activeIndexes {
		files = append(files, j.active.index, j.active.timeIndex)
	}
	for _, f := range files {
		syncs++
		if err := f.Sync(); err != nil {
			return syncs, fmt.Errorf("sync segment %d: %w", j.active.base, err)
		}
	}
	return syncs, nil
}

// finishSync releases the job's references and, if the sync succeeded,
// advances the synced offset and calls OnSynced. It returns the sync error,
// which also becomes the log's sticky failure. The caller holds syncMu.
func (l *Log) finishSync(job syncJob, err error) error {
	for _, seg := range job.rolled {
		if err == nil {
			// Sealed and synced: its index files close and its .log
			// joins the cache.
			if uerr := seg.unpin(); uerr != nil {
				l.logger.Warn("closing sealed segment's index files failed", zap.Int64("base-offset", seg.base), zap.Error(uerr))
			}
		}
		seg.release()
	}
	job.active.release()
	if err != nil {
		err = fmt.Errorf("sync log %s: %w", l.dir, err)
		l.failed.CompareAndSwap(nil, &failure{err})
		return err
	}
	l.syncedBytes = job.appended
	l.recoveryPoint = max(l.recoveryPoint, job.recoveryPoint)
	if job.next > l.synced.Load() {
		l.synced.Store(job.next)
		if l.onSynced != nil {
			l.onSynced(job.next)
		}
	}
	return nil
}

// Sync writes everything appended so far to stable storage now and
// advances SyncedOffset (calling OnSynced from this goroutine). It waits for
// a flusher round that is syncing this log. After a failed sync every later
// Sync and Append returns that error.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if f := l.failed.Load(); f != nil {
		return f.err
	}
	job, ok := l.prepareSync(false)
	if !ok {
		return ErrClosed
	}
	_, err := job.run()
	if err = l.finishSync(job, err); err != nil {
		l.logger.Debug("sync failed", zap.Error(err))
	}
	return err
}
